"""Causal analyses against exactness properties and independent computations."""

import family_checks as fc
import numpy as np
import pytest
import torch

import audiolens as al


@pytest.fixture(scope="module")
def model():
    m = al.models.tiny_qwen2_audio(seed=0)
    fc.randomize_norm_gains(m.hf_model)
    return m


@pytest.fixture(scope="module")
def batch(model, clips, gender_task):
    return model.prepare(clips, 16000, gender_task.prompt("P3"), labels=["male", "female", "female", "male"])


def test_full_window_knockout_equals_audio_mask(model, batch, gender_task):
    ko = al.attention_knockout(model, batch, gender_task, keys="audio", window=model.n_layers)
    assert ko.starts == [1]
    masked = al.LogitLens(gender_task).run(model, batch, [al.AudioMask()])
    p = torch.softmax(masked.logits_at("last")[-1], -1)[torch.arange(len(batch)), batch.targets]
    torch.testing.assert_close(ko.knocked[0], p, atol=1e-5, rtol=1e-5)
    plain = al.LogitLens(gender_task).run(model, batch)
    base = torch.softmax(plain.logits_at("last")[-1], -1)[torch.arange(len(batch)), batch.targets]
    torch.testing.assert_close(ko.base, base, atol=1e-5, rtol=1e-5)


def test_knockout_windows_equal_layer_masks(model, batch, gender_task):
    ko = al.attention_knockout(model, batch, gender_task, keys="question", window=2)
    assert ko.starts == list(range(1, model.n_layers))
    for w, start in enumerate(ko.starts):
        masked = al.LogitLens(gender_task).run(
            model, batch, [al.AudioMask(keys="question", layers=[start, start + 1])])
        p = torch.softmax(masked.logits_at("last")[-1], -1)[torch.arange(len(batch)), batch.targets]
        torch.testing.assert_close(ko.knocked[w], p, atol=1e-5, rtol=1e-5)
    frame = ko.to_frame()
    assert len(frame) == len(ko.starts) * len(batch)
    np.testing.assert_allclose(frame.groupby("start")["delta"].mean().to_numpy(), ko.summary(), atol=1e-6)


@pytest.mark.parametrize("per_head", [False, True])
def test_dla_parts_sum_to_the_models_gap(model, batch, gender_task, per_head):
    dla = al.direct_logit_attribution(model, batch, gender_task, per_head=per_head)
    res = al.LogitLens(gender_task).run(model, batch)  # the model's own label logits at L
    logits = res.logits_at("last")[-1]
    rows = torch.arange(len(batch))
    expected = logits[rows, dla.targets] - logits[rows, dla.rivals]
    torch.testing.assert_close(dla.gap, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dla.parts.sum(1), expected, atol=1e-4, rtol=1e-4)
    n_heads = model.hf_model.config.text_config.num_attention_heads
    per_layer = 2 + n_heads if per_head else 2
    assert len(dla.components) == 1 + per_layer * model.n_layers


def test_dla_on_hand_computed_single_layer_case(model, batch, gender_task):
    """The embedding part equals the frozen-norm projection computed by hand."""
    dla = al.direct_logit_attribution(model, batch, gender_task)
    _, cache = model.run_with_cache(batch, positions="last", return_type=None)
    final = cache[model.resid_name(model.n_layers)][:, 0]
    embed = cache[model.resid_name(0)][:, 0]
    norm = model.final_norm
    rms = torch.sqrt(final.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    ids = al.label_token_ids(model.tokenizer, gender_task.labels)
    w = model.W_U[ids]
    direction = w[dla.targets] - w[dla.rivals]
    by_hand = ((norm.weight * embed / rms) * direction).sum(-1)
    torch.testing.assert_close(dla.parts[:, 0], by_hand, atol=1e-5, rtol=1e-5)


def test_token_lens_top1_at_last_layer_is_the_models_argmax(model, batch):
    tok = al.TokenLens(top_k=3).run(model, batch, positions=["audio", "last"])
    with torch.no_grad():
        logits = model.hf_model(**batch.inputs).logits
    probs = torch.softmax(logits.float(), -1)
    index = tok.positions
    for r in range(len(batch)):
        for j in range(index.shape[1]):
            p = int(index[r, j])
            if p < 0:
                assert tok.token_ids[-1, r, j, 0] == -1 and torch.isnan(tok.probs[-1, r, j, 0])
                continue
            top = probs[r, p].topk(3)
            assert tok.token_ids[-1, r, j].tolist() == top.indices.tolist()
            torch.testing.assert_close(tok.probs[-1, r, j], top.values, atol=1e-5, rtol=1e-4)
    audio_count = int(batch.spans["audio"][0].sum())
    assert tok.seconds[0, 0] == 0.0
    assert tok.seconds[0, audio_count - 1] == pytest.approx((audio_count - 1) / 25.0)
    frame = tok.to_frame()
    assert set(frame["rank"]) == {1, 2, 3}


def test_full_patch_is_clean_and_empty_patch_is_corrupt(model, clips, gender_task):
    labels = ["male", "female", "female", "male"]
    clean = model.prepare(clips, 16000, gender_task.prompt("P3"), labels=labels)
    corrupt = model.prepare(al.corrupt_clips(clips, "noise", snr_db=-5), 16000, gender_task.prompt("P3"), labels=labels)
    lens = al.LogitLens(gender_task)
    ids = list(lens.run(model, clean).label_token_ids)
    every = [model.resid_name(layer) for layer in range(model.n_layers)]
    _, acts = model.run_with_cache(clean, names_filter=every, return_type=None)
    acts = {n: acts[n] for n in every}
    all_positions = torch.ones(len(clean), clean.seq_len, dtype=torch.bool)
    full = al.analysis.patched_label_logits(model, acts, corrupt, [[(n, all_positions) for n in every]], ids)[0]
    empty = al.analysis.patched_label_logits(model, acts, corrupt, [[]], ids)[0]
    torch.testing.assert_close(full, lens.run(model, clean).logits_at("last")[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(empty, lens.run(model, corrupt).logits_at("last")[-1], atol=1e-5, rtol=1e-5)


def test_patch_grid_recovery(model, clips, gender_task):
    labels = ["male", "female", "female", "male"]
    clean = model.prepare(clips, 16000, gender_task.prompt("P3"), labels=labels)
    corrupt = model.prepare(al.corrupt_clips(clips, "silence"), 16000, gender_task.prompt("P3"), labels=labels)
    pat = al.patch(model, clean, corrupt, gender_task, what="resid", variants_per_pass=5)
    assert pat.layers == list(range(model.n_layers))
    assert pat.groups[0] == "audio 0.00-0.48s" and "prefix" in pat.groups
    # Patching the whole audio at layer 0 in one group (resid at the embedding) is one cell of a
    # coarser grid: compare against an explicit patched run.
    whole = al.patch(model, clean, corrupt, gender_task, what="resid", groups=["audio"], layers=[0])
    ids = al.label_token_ids(model.tokenizer, gender_task.labels)
    _, acts = model.run_with_cache(clean, names_filter=[model.resid_name(0)], return_type=None)
    lg = al.analysis.patched_label_logits(
        model, {model.resid_name(0): acts[model.resid_name(0)]}, corrupt, [[(model.resid_name(0), clean.span("audio"))]], ids)[0]
    rows = torch.arange(len(clean))
    from audiolens.analysis.common import rival_labels

    clean_logits = al.LogitLens(gender_task).run(model, clean).logits_at("last")[-1]
    riv = rival_labels(clean_logits, clean.targets)
    g = lambda x: float((x[rows, clean.targets] - x[rows, riv]).mean())
    expected = (g(lg) - whole.corrupt_gap) / (whole.clean_gap - whole.corrupt_gap)
    assert float(whole.recovery[0, 0]) == pytest.approx(expected, abs=1e-5)
    frame = pat.to_frame()
    assert len(frame) == len(pat.layers) * len(pat.groups)


def test_patch_refuses_misaligned_batches(model, clips, gender_task):
    labels = ["male", "female"]
    clean = model.prepare(clips[:2], 16000, gender_task.prompt("P3"), labels=labels)
    other = model.prepare(clips[2:], 16000, gender_task.prompt("P3"), labels=labels)
    with pytest.raises(al.analysis.PatchError, match="same"):
        al.patch(model, clean, other, gender_task)


def test_analysis_figures_draw(model, batch, gender_task, clips, tmp_path):
    figs = [
        al.attention_knockout(model, batch, gender_task, window=2).plot(),
        al.direct_logit_attribution(model, batch, gender_task).plot(),
        al.TokenLens(top_k=2).run(model, batch.subset([3]), positions="audio").plot(),
    ]
    for i, fig in enumerate(figs):
        fig.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").stat().st_size > 1000


@pytest.mark.parametrize("family", ["audioflamingo3", "qwen2_5_omni_thinker", "granite_speech"])
def test_exactness_properties_on_other_families(family, clips, gender_task):
    """Full-window knockout = AudioMask, DLA parts sum to the model's gap, full patch = clean and
    empty patch = corrupted, on families with other layouts (Granite: scaled residual branches)."""
    model = al.models.tiny(family, seed=0)
    fc.randomize_norm_gains(model.hf_model)
    labels = ["male", "female", "female", "male"]
    batch = model.prepare(clips, 16000, gender_task.prompt("P3"), labels=labels)
    lens = al.LogitLens(gender_task)
    rows = torch.arange(len(batch))
    ko = al.attention_knockout(model, batch, gender_task, window=model.n_layers)
    masked = lens.run(model, batch, [al.AudioMask()]).logits_at("last")[-1]
    torch.testing.assert_close(ko.knocked[0], torch.softmax(masked, -1)[rows, batch.targets], atol=1e-5, rtol=1e-4)
    dla = al.direct_logit_attribution(model, batch, gender_task)
    own = lens.run(model, batch).logits_at("last")[-1]
    torch.testing.assert_close(dla.parts.sum(1), own[rows, dla.targets] - own[rows, dla.rivals], atol=1e-4, rtol=1e-4)
    corrupt = model.prepare(al.corrupt_clips(clips, "noise", snr_db=-5), 16000, gender_task.prompt("P3"), labels=labels)
    names = [model.resid_name(layer) for layer in range(model.n_layers)]
    _, acts = model.run_with_cache(batch, names_filter=names, return_type=None)
    acts = {n: acts[n] for n in names}
    ids = al.label_token_ids(model.tokenizer, gender_task.labels)
    everything = torch.ones(len(batch), batch.seq_len, dtype=torch.bool)
    full = al.analysis.patched_label_logits(model, acts, corrupt, [[(n, everything) for n in names]], ids)[0]
    empty = al.analysis.patched_label_logits(model, acts, corrupt, [[]], ids)[0]
    torch.testing.assert_close(full, own, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(empty, lens.run(model, corrupt).logits_at("last")[-1], atol=1e-4, rtol=1e-4)


def test_per_head_attribution_against_transformer_lens(clips, gender_task, tmp_path):
    """TransformerLens folds each head's value bias into the layer's output bias (b_O += Σ_h
    b_V,h W_O,h); audiolens keeps it with its head (z includes b_V). Per block the totals agree;
    each head's share differs by exactly its value-bias term, which TL's b_O holds."""
    import copy

    from transformer_lens.model_bridge import TransformerBridge

    from audiolens.analysis.attribution import _frozen_norm

    model = al.models.tiny_qwen2_audio(seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random builds start with zero biases: give the value projections some
        for layer in model.layers:
            layer.self_attn.v_proj.bias.copy_(0.5 * torch.randn(layer.self_attn.v_proj.bias.shape, generator=g))
    batch = model.prepare(clips[:1], 16000, gender_task.prompt("P3"), labels=["female"])
    dla = al.direct_logit_attribution(model, batch, gender_task, per_head=True)
    ours = dict(zip(dla.components, dla.parts[0].tolist()))

    model.hf_model.save_pretrained(tmp_path)
    bridge = TransformerBridge.boot_transformers(
        str(tmp_path), hf_model=copy.deepcopy(model.hf_model), tokenizer=copy.deepcopy(model.tokenizer))
    bridge.enable_compatibility_mode(disable_warnings=True, fold_ln=False, center_writing_weights=False,
                                     center_unembed=False, fold_value_biases=True)
    inputs = dict(batch.inputs)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(inputs.pop("input_ids"), **inputs)

    # TL's parts through the same frozen final norm and the same target − rival direction.
    L, n_heads = model.n_layers, model.hf_model.config.text_config.num_attention_heads
    _, mine = model.run_with_cache(batch, names_filter=[model.resid_name(L)], positions="last", return_type=None)
    gain, scale, _, _ = _frozen_norm(model.final_norm, mine[model.resid_name(L)][:, 0])
    rows = model.W_U[list(al.LogitLens(gender_task).run(model, batch).label_token_ids)]
    direction = rows[dla.targets[0]] - rows[dla.rivals[0]]

    def part(x):
        return float(((gain[0] * x / scale[0, 0]) * direction).sum().detach())

    differ = 0
    for b in range(L):
        attn = model.layers[b].self_attn
        W_O, b_O = bridge.blocks[b].attn.W_O.detach(), bridge.blocks[b].attn.b_O.detach()
        z = cache[f"blocks.{b}.attn.hook_z"][0, -1].detach()  # (heads, d_head), value bias folded out
        b_V = attn.v_proj.bias.detach().reshape(-1, z.shape[1])  # per key/value head
        b_V = b_V.repeat_interleave(n_heads // b_V.shape[0], 0)  # per query head
        value_terms = [part(b_V[h] @ W_O[h]) for h in range(n_heads)]
        theirs = [part(z[h] @ W_O[h]) for h in range(n_heads)]
        for h in range(n_heads):
            mine_h = ours[f"L{b + 1}.H{h}"]
            assert mine_h == pytest.approx(theirs[h] + value_terms[h], abs=1e-5)
            differ += abs(mine_h - theirs[h]) > 1e-3
        assert part(b_O) == pytest.approx(ours[f"L{b + 1}.attn_bias"] + sum(value_terms), abs=1e-5)
        total = sum(ours[f"L{b + 1}.H{h}"] for h in range(n_heads)) + ours[f"L{b + 1}.attn_bias"]
        assert total == pytest.approx(sum(theirs) + part(b_O), abs=1e-5)
    assert differ >= L * n_heads // 2  # the conventions do differ, head by head
