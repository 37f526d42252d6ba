"""Masks (RQ4), enrichment (Eq. 5) and user interventions, checked against independent runs."""

import dataclasses

import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens.interventions import collect_hooks


def cached(model, batch, interventions=(), **kw):
    with model.hooks(fwd_hooks=collect_hooks(list(interventions), model, batch)):
        return model.run_with_cache(batch, **kw)


@pytest.fixture(scope="module")
def lens(gender_task):
    return al.LogitLens(gender_task)


def test_empty_mask_and_zero_scale_reproduce_the_plain_run(tiny_model, gender_batch, lens):
    base = lens.run(tiny_model, gender_batch)
    empty = torch.zeros_like(gender_batch.spans["audio"])
    masked = lens.run(tiny_model, gender_batch, [al.AudioMask(keys=empty)])
    enriched = lens.run(tiny_model, gender_batch, [al.Enrich(source_layer=1, scale=0.0, target_layer=3)])
    assert torch.equal(masked.label_logits, base.label_logits)
    assert torch.equal(enriched.label_logits, base.label_logits)


@pytest.mark.parametrize("padded", [True, False])
def test_mask_changes_only_the_query_position(tiny_model, gender_batch, clips, gender_task, padded):
    # Unpadded, SDPA runs the plain causal kernel; the mask must still leave earlier rows alone.
    batch = gender_batch if padded else tiny_model.prepare([clips[0]] * 2, 16000, gender_task.prompt("P3"))
    assert bool((batch.inputs["attention_mask"] == 0).any()) == padded
    _, clean = tiny_model.run_with_cache(batch, names_filter=lambda n: "resid" in n)
    _, masked = cached(tiny_model, batch, [al.AudioMask()], names_filter=lambda n: "resid" in n)
    for name in clean.keys():
        assert torch.equal(masked[name][:, :-1], clean[name][:, :-1]), name
    last = f"blocks.{tiny_model.n_layers - 1}.hook_resid_post"
    assert not torch.allclose(masked[last][:, -1], clean[last][:, -1])


def test_mask_equals_prefix_cache_then_masked_last_token(tiny_model, gender_batch, lens):
    """Independent computation: run the prefix once with a key/value cache, then the last token
    alone with the audio positions zeroed in its 2-D attention mask."""
    inp = gender_batch.inputs
    hf = tiny_model.hf_model
    with torch.no_grad():
        prefix = hf(
            input_ids=inp["input_ids"][:, :-1], attention_mask=inp["attention_mask"][:, :-1],
            position_ids=inp["position_ids"][:, :-1], input_features=inp["input_features"],
            feature_attention_mask=inp["feature_attention_mask"], use_cache=True,
        )
        keep = inp["attention_mask"].clone()
        keep[gender_batch.spans["audio"]] = 0
        last = hf(
            input_ids=inp["input_ids"][:, -1:], attention_mask=keep,
            position_ids=inp["position_ids"][:, -1:], past_key_values=prefix.past_key_values,
            output_hidden_states=True,
        )
    _, masked = cached(tiny_model, gender_batch, [al.AudioMask()], positions="last")
    for layer in range(tiny_model.n_layers):
        torch.testing.assert_close(
            masked[tiny_model.resid_name(layer)][:, 0], last.hidden_states[layer][:, -1], rtol=1e-5, atol=1e-5
        )
    res = lens.run(tiny_model, gender_batch, [al.AudioMask()])
    ids = list(res.label_token_ids)
    torch.testing.assert_close(
        res.label_logits[tiny_model.n_layers, :, 0], last.logits[:, -1, ids], rtol=1e-5, atol=1e-5
    )


def test_sdpa_and_eager_give_the_same_masked_numbers(tiny_model, clips, gender_task, lens):
    eager = al.models.tiny_qwen2_audio(seed=0, attn_implementation="eager")
    for (k, a), b in zip(tiny_model.hf_model.state_dict().items(), eager.hf_model.state_dict().values()):
        assert torch.equal(a, b), k
    batch = tiny_model.prepare(clips, 16000, gender_task.prompt("P3"), labels=["male"] * 4)
    for interventions in ([al.AudioMask()], [al.AudioMask(layers=[2, 3])]):
        a = lens.run(tiny_model, batch, interventions)
        b = lens.run(eager, batch, interventions)
        # Different attention kernels: agreement to float32 rounding, not bit for bit.
        torch.testing.assert_close(a.label_logits, b.label_logits, rtol=1e-4, atol=1e-5)
    unmasked = lens.run(eager, batch)
    assert not torch.allclose(unmasked.label_logits, b.label_logits)


def test_mask_on_a_layer_subset(tiny_model, gender_batch):
    _, clean = tiny_model.run_with_cache(gender_batch, positions="last")
    _, masked = cached(tiny_model, gender_batch, [al.AudioMask(layers=[3])], positions="last")
    for layer in (0, 1, 2):  # residuals before block 3 are untouched
        assert torch.equal(masked[tiny_model.resid_name(layer)], clean[tiny_model.resid_name(layer)])
    assert not torch.equal(masked[tiny_model.resid_name(3)], clean[tiny_model.resid_name(3)])
    with pytest.raises(ValueError, match="outside 1..4"):
        al.AudioMask(layers=[0]).writes(tiny_model)


def test_mask_takes_any_span(tiny_model, gender_batch, lens):
    """Explicit key positions (here the first audio token of each row) mask like a named span."""
    audio = gender_batch.spans["audio"]
    first_audio = audio.int().argmax(1)
    mask = torch.zeros_like(audio)
    mask[torch.arange(len(gender_batch)), first_audio] = True
    by_mask = lens.run(tiny_model, gender_batch, [al.AudioMask(keys=mask)])
    plain = lens.run(tiny_model, gender_batch)
    assert not torch.equal(by_mask.label_logits[:, :, 0], plain.label_logits[:, :, 0])
    assert torch.equal(by_mask.label_logits[:, :, 1], plain.label_logits[:, :, 1])


def test_enrich_is_eq5_on_cached_residuals(tiny_model, gender_batch, lens):
    src, tgt, lam = 1, 3, 0.7
    _, clean = tiny_model.run_with_cache(gender_batch, positions="last")
    _, enriched = cached(tiny_model, gender_batch, [al.Enrich(src, lam, target_layer=tgt)], positions="last")
    expected = clean[tiny_model.resid_name(tgt)] + lam * clean[tiny_model.resid_name(src)]
    torch.testing.assert_close(enriched[tiny_model.resid_name(tgt)], expected, rtol=0, atol=0)
    for layer in range(tgt):
        assert torch.equal(enriched[tiny_model.resid_name(layer)], clean[tiny_model.resid_name(layer)])
    # The lens reads the enriched residual through the final norm and the head.
    res = lens.run(tiny_model, gender_batch, [al.Enrich(src, lam, target_layer=tgt)])
    W = tiny_model.W_U[list(res.label_token_ids)]
    with torch.no_grad():
        by_hand = tiny_model.final_norm(expected[:, 0]) @ W.T
    torch.testing.assert_close(res.label_logits[tgt, :, 0], by_hand, rtol=1e-6, atol=1e-6)


def test_enrich_per_row_layers(tiny_model, gender_batch):
    _, clean = tiny_model.run_with_cache(gender_batch, positions="last")
    rows = [0, 1, 0, 2]
    _, enriched = cached(tiny_model, gender_batch, [al.Enrich(rows, 0.5, gap=2)], positions="last")
    for i, src in enumerate(rows):
        tgt = src + 2
        expected = clean[tiny_model.resid_name(tgt)][i] + 0.5 * clean[tiny_model.resid_name(src)][i]
        torch.testing.assert_close(enriched[tiny_model.resid_name(tgt)][i], expected, rtol=0, atol=0)


def test_enrich_rejects_out_of_range_layers(tiny_model, gender_batch, lens):
    with pytest.raises(ValueError, match=r"target <= 4"):
        lens.run(tiny_model, gender_batch, [al.Enrich(source_layer=2, scale=1.0)])  # 2 + 5 > 4
    with pytest.raises(ValueError, match=r"0 <= source"):
        lens.run(tiny_model, gender_batch, [al.Enrich(source_layer=-1, scale=1.0, target_layer=2)])


def test_conflicting_interventions_raise(tiny_model, gender_batch, lens):
    with pytest.raises(al.InterventionConflict, match="both write 'blocks.2.hook_resid_post'"):
        lens.run(tiny_model, gender_batch, [al.Enrich(0, 1.0, target_layer=3), al.Enrich(1, 1.0, target_layer=3)])
    # Masks commute: two of them compose into one forward pass.
    both = lens.run(tiny_model, gender_batch, [al.AudioMask(layers=[1, 2]), al.AudioMask(layers=[2, 3, 4])])
    all_layers = lens.run(tiny_model, gender_batch, [al.AudioMask()])
    assert torch.equal(both.label_logits, all_layers.label_logits)
    # A mask and an enrichment compose too.
    lens.run(tiny_model, gender_batch, [al.AudioMask(), al.Enrich(1, 0.5, target_layer=4)])


def test_user_interventions(tiny_model, gender_batch, lens):
    class ZeroAudio(al.Intervention):
        """Zero-ablate the audio span's residual after one block."""

        def __init__(self, layer):
            self.layer = layer

        def writes(self, model):
            return [model.resid_name(self.layer)]

        def hooks(self, model, batch):
            audio = batch.span("audio").to(model.device)
            return [(model.resid_name(self.layer), lambda act, hook: act.masked_fill(audio[..., None], 0.0))]

    def zero(act, hook, batch):
        return act.masked_fill(batch.span("audio")[..., None], 0.0)

    by_class = lens.run(tiny_model, gender_batch, [ZeroAudio(2)])
    by_function = lens.run(tiny_model, gender_batch, [al.HookIntervention("blocks.1.hook_resid_post", zero)])
    audio = gender_batch.spans["audio"]
    by_pair = lens.run(tiny_model, gender_batch, [
        ("blocks.1.hook_resid_post", lambda act, hook: act.masked_fill(audio[..., None], 0.0))
    ])
    plain = lens.run(tiny_model, gender_batch)
    assert torch.equal(by_class.label_logits, by_function.label_logits)
    assert torch.equal(by_class.label_logits, by_pair.label_logits)
    assert torch.equal(by_class.label_logits[:2], plain.label_logits[:2])  # layers before 2 untouched
    assert not torch.equal(by_class.label_logits[3:], plain.label_logits[3:])
    with pytest.raises(TypeError, match="not an intervention"):
        lens.run(tiny_model, gender_batch, ["zero"])


def test_hooks_removed_after_an_intervention_fails(tiny_model, gender_batch, lens):
    def boom(act, hook, batch):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        lens.run(tiny_model, gender_batch, [al.AudioMask(), al.HookIntervention("blocks.2.hook_resid_post", boom)])
    assert not any(hp.fwd_hooks for hp in tiny_model.hook_dict.values())


def constructed_result(info_wrong, n_layers=8, n_wrong=4, n_right=4):
    """A result whose wrong samples have information score ``info_wrong[ℓ]`` per layer."""
    n = n_wrong + n_right
    logits = torch.zeros(n_layers + 1, n, 1, 2)
    targets = torch.zeros(n, dtype=torch.long)
    for layer in range(n_layers + 1):
        k = round(info_wrong[layer] * n_wrong)
        logits[layer, :k, 0, 0] = 1.0       # the first k wrong samples right at this layer
        logits[layer, k:n_wrong, 0, 1] = 1.0
        logits[layer, n_wrong:, 0, 0] = 1.0  # right samples always right
    logits[n_layers, :n_wrong, 0] = torch.tensor([0.0, 1.0])  # wrong at the last layer
    return al.LensResult(logits, targets, ("a", "b"), ("last",), (1, 2))


def test_select_enrich_layer_on_a_constructed_result():
    info = [0.0, 0.25, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    res = constructed_result(info)
    assert res.correct.tolist() == [False] * 4 + [True] * 4
    assert al.select_enrich_layer(res, gap=5) == 3
    assert al.select_enrich_layer(res, gap=6) == 2  # only layers 1..2 leave room for +6
    everyone_right = res.subset(res.correct)
    with pytest.raises(ValueError, match="every probe sample"):
        al.select_enrich_layer(everyone_right)


def test_split_is_disjoint_and_deterministic(gender_batch):
    probe, test = al.split(gender_batch, n_probe=1, seed=0)
    again, _ = al.split(gender_batch, n_probe=1, seed=0)
    assert probe.ids == again.ids
    assert sorted(probe.ids + test.ids) == sorted(gender_batch.ids)
    with pytest.raises(ValueError, match="n_probe"):
        al.split(gender_batch, n_probe=4)


def test_enrich_sweep_table(tiny_model, clips, gender_task, lens):
    model = al.models.tiny_qwen2_audio(seed=1, n_layers=6)
    batch = model.prepare(clips * 2, 16000, gender_task.prompt("P3"), labels=["male", "female"] * 4)
    base = lens.run(model, batch).accuracy()
    sweep = al.enrich_sweep(model, batch, lens, source_layer=2, scales=[0, 1.0, 4.0],
                            random_baseline_seeds=3, gap=3, progress=False)
    table = sweep.table
    assert list(table.columns) == ["scale", "method", "seed", "accuracy", "n"]
    assert len(table) == 3 + 3 * 3 and (table["n"] == len(batch)).all()
    # λ = 0 changes nothing, whatever the layer.
    assert (table.loc[table["scale"] == 0, "accuracy"] == base).all()
    # The selected-layer rows equal a direct run of Enrich at that layer.
    direct = lens.run(model, batch, [al.Enrich(2, 4.0, gap=3)]).accuracy()
    got = table.query("method == 'selected' and scale == 4.0")["accuracy"].item()
    assert got == direct
    # A random-baseline row equals Enrich run directly with that seed's per-clip layers.
    layers = al.enrich.random_source_layers(1, len(batch), model.n_layers, gap=3)
    rows = sweep.rows.query("method == 'random' and seed == 1 and scale == 4.0")
    assert rows["layer"].tolist() == layers.tolist()
    direct_random = lens.run(model, batch, [al.Enrich(layers, 4.0, gap=3)])
    assert rows["correct"].tolist() == direct_random.correct.tolist()
    # Changed answers against λ = 0, counted by hand from the per-clip predictions.
    plain = [lens.run(model, batch).labels[k] for k in lens.run(model, batch).predictions()]
    changed = sweep.changed_answers().set_index(["scale", "method", "seed"])
    assert changed.loc[(4.0, "random", 1), "changed"] == sum(
        a != b for a, b in zip(rows["prediction"], plain))
    assert (changed.loc[0.0, "changed"] == 0).all()
    rel = sweep.relative_improvement()
    assert isinstance(rel, pd.DataFrame)
    sel = rel.query("method == 'selected'").set_index("scale")
    assert sel.loc[4.0, "relative_improvement"] == pytest.approx(direct / base - 1)
    with pytest.raises(ValueError, match="source_layer"):
        al.enrich_sweep(model, batch, lens, source_layer=5, gap=3, progress=False)


def test_run_many_shares_the_prefix_and_matches_separate_runs(tiny_model, gender_batch, lens, monkeypatch):
    variants = {
        "none": [],
        "mask": [al.AudioMask()],
        "enrich": [al.Enrich(1, 0.5, target_layer=3)],
        "both": [al.AudioMask(), al.Enrich(1, 0.5, target_layer=3)],
        "λ = 0": [al.Enrich(1, 0.0, target_layer=3)],
    }
    calls = []
    real = tiny_model.run_backbone
    monkeypatch.setattr(tiny_model, "run_backbone",
                        lambda inputs, **kw: calls.append(tuple(inputs["input_ids"].shape)) or real(inputs, **kw))
    many = lens.run_many(tiny_model, gender_batch, variants)
    # One pass over every token (which is also the plain run, and λ = 0's), then one
    # single-token step over a copy of the batch per variant that changes something.
    rows, seq, changing = len(gender_batch), gender_batch.seq_len, len(variants) - 2
    assert calls == [(rows, seq), (rows * changing, 1)]
    calls.clear()
    one_by_one = dataclasses.replace(lens, variants_per_step=1).run_many(tiny_model, gender_batch, variants)
    assert calls == [(rows, seq)] + [(rows, 1)] * changing
    for name, ivs in variants.items():
        alone = lens.run(tiny_model, gender_batch, ivs)
        torch.testing.assert_close(many[name].label_logits, alone.label_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(one_by_one[name].label_logits, alone.label_logits, rtol=1e-5, atol=1e-6)
    # The attribute position lies in the shared prefix: identical in every variant.
    for name in variants:
        assert torch.equal(many[name].label_logits[:, :, 1], many["none"].label_logits[:, :, 1])


def test_run_many_falls_back_when_an_intervention_reaches_earlier(tiny_model, gender_batch, lens):
    earlier = al.AudioMask(queries="attribute")
    assert not earlier.last_token_only(gender_batch)
    out = lens.run_many(tiny_model, gender_batch, {"none": [], "attr": [earlier]})
    alone = lens.run(tiny_model, gender_batch, [earlier])
    assert torch.equal(out["attr"].label_logits, alone.label_logits)


def test_run_formats_encodes_the_audio_once(tiny_model, clips, gender_task, lens):
    batches = {f: tiny_model.prepare(clips, 16000, gender_task.prompt(f)) for f in ("P1", "P2", "P3")}
    calls = []
    tower = tiny_model.hf_model.model.audio_tower
    handle = tower.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = lens.run_formats(tiny_model, batches, {"none": [], "mask": [al.AudioMask()]})
    finally:
        handle.remove()
    assert len(calls) == 1 and set(out) == {"P1", "P2", "P3"}
    # everything up to the end of the audio (and the newline after it) is shared
    audio_end = int(batches["P1"].spans["audio"].nonzero()[:, 1].max()) + 1
    assert al.batch.shared_prefix(list(batches.values())) >= audio_end
    other = tiny_model.prepare(clips[::-1], 16000, gender_task.prompt("P1"))
    assert al.batch.shared_prefix([batches["P1"], other]) == 0
