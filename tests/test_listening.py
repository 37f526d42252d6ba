"""Listening analyses: attention by span, head interventions, audio heads, counterfactual audio.
Exactness of attention by span against HF ``output_attentions`` on every family lives in
``family_checks`` (run by test_families.py and test_remote_code.py)."""

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens.analysis.attention import SpanAttention, SpanAttentionRecorder


@pytest.fixture(scope="module")
def setup():
    model = al.models.tiny("qwen2_audio", seed=0)
    task = al.sakura_task("gender")
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 24000, 12000, 20000)]
    labels = ["male", "female", "female", "male"]
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=labels)
    return model, task, batch, clips, labels


def test_attention_recorded_in_a_lens_pass_equals_its_own_pass(setup):
    model, task, batch, *_ = setup
    alone = al.attention_to_spans(model, batch)
    rec = SpanAttentionRecorder(model, batch)
    with rec.recording():
        res = al.LogitLens(task).run(model, batch)
    torch.testing.assert_close(rec.result().share, alone.share, atol=0, rtol=0)
    # ... and the lens it rode along with is unchanged
    torch.testing.assert_close(res.label_logits, al.LogitLens(task).run(model, batch).label_logits, atol=0, rtol=0)


def test_attention_frame_and_joined_batches(setup):
    model, _, batch, *_ = setup
    att = al.attention_to_spans(model, [batch.subset([0, 1]), batch.subset([2, 3])], layers=[1, 3])
    whole = al.attention_to_spans(model, batch, layers=[1, 3])
    torch.testing.assert_close(att.share, whole.share, atol=1e-6, rtol=1e-5)
    frame = att.to_frame()
    assert list(frame.columns[:4]) == ["layer", "head", "span", "share"]
    assert len(frame) == 2 * att.heads * len(att.spans)
    sums = frame.groupby(["layer", "head"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    assert (frame["low"] <= frame["share"]).all() and (frame["share"] <= frame["high"]).all()
    per_clip = att.to_frame(per_clip=True)
    assert set(per_clip["id"]) == set(batch.ids)
    fig = att.plot("audio")
    assert fig.axes[0].get_images()[0].get_array().shape == (2, att.heads)


def test_attention_bad_input(setup):
    model, _, batch, *_ = setup
    with pytest.raises(ValueError, match="outside 1..4"):
        al.attention_to_spans(model, batch, layers=[0])
    with pytest.raises(KeyError, match="unknown position"):
        al.attention_to_spans(model, batch, queries="nowhere")
    with pytest.raises(ValueError, match="does not match"):
        SpanAttention([1], ["audio"], torch.zeros(2, 1, 1, 1), ["a"])


def test_mean_ablation_equals_the_reference_mean_written_by_hand(setup):
    """Mean ablation writes each position's mean head output over the reference's real rows; the
    reference is a plain PyTorch pre-hook on the output projection writing that mean."""
    model, task, batch, clips, labels = setup
    ref_batch = model.prepare([c[::-1].copy() for c in clips], 16000, task.prompt("P3"), labels=labels)
    layer, heads = 2, [0, 3]
    name = f"blocks.{layer - 1}.attn.hook_z"
    _, cache = model.run_with_cache(ref_batch, names_filter=[name], return_type=None)
    z = cache[name]  # (rows, seq, head, d_head)
    real = (~ref_batch.span("padding")).float()
    mean = (z * real[:, :, None, None]).sum(0) / real.sum(0)[:, None, None]
    proj = model.layers[layer - 1].self_attn.o_proj
    d = z.shape[-1]

    def write_mean(mod, args):
        x = args[0].clone().reshape(*args[0].shape[:-1], -1, d)
        x[:, :, heads] = mean[None, :, heads]
        return (x.reshape(args[0].shape),)

    handle = proj.register_forward_pre_hook(write_mean)
    try:
        expected = model.hf_model(**batch.inputs).logits[:, -1]
    finally:
        handle.remove()
    lens = al.LogitLens(task, positions=("last",))
    res = lens.run(model, batch, [al.HeadAblation({layer: heads}, mode="mean", reference=ref_batch)])
    ids = list(res.label_token_ids)
    torch.testing.assert_close(res.logits_at("last")[-1], expected[:, ids].float(), atol=1e-5, rtol=1e-4)


def test_head_edits_at_the_last_token_share_the_prefix(setup):
    model, task, batch, *_ = setup
    lens = al.LogitLens(task, positions=("last",))
    variants = {f"{h}": [al.HeadAblation({3: [h]}, positions="last")] for h in range(4)}
    variants["scale"] = [al.HeadScale({2: [1]}, factor=2.5, positions="last")]
    assert lens._shareable(batch, variants, True)
    many = lens.run_many(model, batch, variants)
    for name, ivs in variants.items():
        torch.testing.assert_close(many[name].label_logits, lens.run(model, batch, ivs).label_logits,
                                   atol=1e-5, rtol=1e-4)
    # at the last token only: every earlier position is untouched
    resid = lambda n: "resid_post" in n
    _, clean = model.run_with_cache(batch, names_filter=resid)
    with model.hooks(fwd_hooks=al.interventions.collect_hooks(variants["0"], model, batch)):
        _, edited = model.run_with_cache(batch, names_filter=resid)
    for n in clean:
        assert torch.equal(clean[n][:, :-1], edited[n][:, :-1])
    assert not torch.equal(clean["blocks.3.hook_resid_post"][:, -1], edited["blocks.3.hook_resid_post"][:, -1])


def test_head_intervention_errors(setup):
    model, task, batch, clips, labels = setup
    lens = al.LogitLens(task)
    with pytest.raises(al.errors.UnknownHeadError, match="layer 5 is outside 1..4"):
        lens.run(model, batch, [al.HeadAblation({5: [0]})])
    with pytest.raises(al.errors.UnknownHeadError, match=r"heads \[4\] of layer 1 are outside 0..3"):
        lens.run(model, batch, [al.HeadScale({1: [0, 4]})])
    with pytest.raises(al.errors.UnknownHeadError, match="no heads"):
        lens.run(model, batch, [al.HeadScale({})])
    with pytest.raises(ValueError, match="needs reference"):
        al.HeadAblation({1: [0]}, mode="mean")
    with pytest.raises(ValueError, match="finite"):
        al.HeadScale({1: [0]}, factor=float("nan"))
    other = model.prepare(clips[:2], 16000, task.prompt("P1"), labels=labels[:2])
    with pytest.raises(al.errors.ReferenceMismatch, match="another prompt shape"):
        lens.run(model, batch, [al.HeadAblation({1: [0]}, mode="mean", reference=other)])
    short = model.prepare([clips[2]] * 2, 16000, task.prompt("P3"), labels=labels[:2])
    longer = model.prepare([clips[1], clips[2]], 16000, task.prompt("P3"), labels=labels[:2])
    with pytest.raises(al.errors.ReferenceMismatch):
        lens.run(model, longer, [al.HeadAblation({1: [0]}, mode="mean", reference=short)])
    with pytest.raises(al.InterventionConflict):
        lens.run(model, batch, [al.HeadAblation({1: [0]}), al.HeadScale({1: [1]})])


def test_find_audio_heads_equals_ablating_each_head_by_hand(setup):
    """Each head's effect equals the gap drop when a plain PyTorch pre-hook zeroes that head's
    slice of the output projection's input at the last token; its attention equals
    attention_to_spans; two batches give the rows of one."""
    model, task, batch, *_ = setup
    heads = al.find_audio_heads(model, [batch.subset([0, 1]), batch.subset([2, 3])], task, top_k=3, progress=False)
    assert heads.effect.shape == (4, 4, 4) and heads.ids == batch.ids
    att = al.attention_to_spans(model, batch)
    torch.testing.assert_close(heads.attention, att.of("audio").permute(0, 2, 1), atol=1e-6, rtol=1e-5)
    ids = list(al.LogitLens(task).run(model, batch).label_token_ids)
    targets = batch.targets
    rows = torch.arange(len(batch))

    def gap_of(logits):
        lab = logits[:, -1, ids].float()
        return lab, lab[rows, targets]

    base, base_target = gap_of(model.hf_model(**batch.inputs).logits)
    others = base.clone()
    others[rows, targets] = float("-inf")
    rival = others.argmax(-1)
    for layer, h in [(1, 0), (3, 2), (4, 3)]:
        proj = model.layers[layer - 1].self_attn.o_proj
        d = proj.in_features // 4

        def zero_head(mod, args, h=h, d=d):
            x = args[0].clone()
            x[:, -1, h * d:(h + 1) * d] = 0
            return (x,)

        handle = proj.register_forward_pre_hook(zero_head)
        try:
            lab, _ = gap_of(model.hf_model(**batch.inputs).logits)
        finally:
            handle.remove()
        expected = (base_target - base[rows, rival]) - (lab[rows, targets] - lab[rows, rival])
        torch.testing.assert_close(heads.effect[layer - 1, h], expected, atol=1e-4, rtol=1e-4)
    frame = heads.to_frame()
    assert len(frame) == 16 and {"audio_share", "effect", "effect_low", "rank_effect", "n"} <= set(frame.columns)
    best = frame.loc[frame["rank_effect"] == 1].iloc[0]
    top = heads.top()
    assert sum(len(v) for v in top.values()) == 3 and int(best["head"]) in top[int(best["layer"])]
    assert heads.plot().axes[0].get_images()[0].get_array().shape == (4, 4)


def test_steer_heads_counts_changed_answers(setup):
    model, task, batch, *_ = setup
    top = {2: [1], 4: [0, 3]}
    sweep = al.steer_heads(model, batch, task, top, factors=(0.0, 3.0), random_baseline_seeds=2, progress=False)
    lens = al.LogitLens(task, positions=("last",))
    plain = lens.run(model, batch)
    scaled = lens.run(model, batch, [al.HeadScale(top, factor=3.0, positions="last")])
    frame = sweep.to_frame()
    row = frame[(frame["factor"] == 3.0) & (frame["method"] == "top")].iloc[0]
    assert row["accuracy"] == pytest.approx(scaled.accuracy())
    assert row["changed"] == int((scaled.predictions() != plain.predictions()).sum())
    assert row["fixed"] == int((scaled.correct & ~plain.correct).sum())
    assert set(frame["method"]) == {"top", "random"} and set(frame["factor"]) == {0.0, 1.0, 3.0}
    one = frame[frame["factor"] == 1.0]
    assert (one["changed"] == 0).all() and (one["accuracy"] == plain.accuracy()).all()


def _dataset(clips, labels, task):
    from audiolens.data.dataset import AttributeDataset, Sample

    return AttributeDataset(task, [Sample(f"c{i}", lab, audio=c, sampling_rate=16000)
                                   for i, (c, lab) in enumerate(zip(clips, labels))], name="toy")


def test_grounding_answers_equal_the_models_own_logits(setup):
    """The top layer's answers under each condition are the HF model's own argmax over the
    label tokens on the counterfactual input; "no_audio" equals removing the audio from the 2-D
    attention mask (text never reads it, and nothing else changes)."""
    model, task, batch, clips, labels = setup
    data = _dataset(clips, labels, task)
    g = al.grounding(model, data, task, conditions=("silence", "swap", "no_audio"), batch_size=3, progress=False)
    ids = list(al.LogitLens(task).run(model, batch).label_token_ids)

    def answers(inputs):
        with torch.no_grad():
            return model.hf_model(**inputs).logits[:, -1, ids].argmax(-1).numpy()

    real = answers(batch.inputs)
    np.testing.assert_array_equal(g.answers["real"], real)
    silent = model.prepare([np.zeros_like(c) for c in clips], 16000, task.prompt("P3"), labels=labels)
    np.testing.assert_array_equal(g.answers["silence"], answers(silent.inputs))
    keep = batch.inputs["attention_mask"].clone()
    keep[batch.spans["audio"]] = 0
    np.testing.assert_array_equal(g.answers["no_audio"], answers({**batch.inputs, "attention_mask": keep}))
    rates = g.listening_rate()
    assert rates["silence"] == pytest.approx(float(np.mean(answers(silent.inputs) != real)))
    frame = g.to_frame()
    assert list(frame.columns[:5]) == ["condition", "layer", "info_real", "info_counterfactual", "grounding"]
    assert len(frame) == 3 * (model.n_layers + 1)
    top = frame[(frame["condition"] == "silence") & (frame["layer"] == model.n_layers)].iloc[0]
    right = real == batch.targets.numpy()
    assert top["info_real"] == pytest.approx(right.mean())
    assert top["grounding"] == pytest.approx(right.mean() - (answers(silent.inputs) == batch.targets.numpy()).mean())
    assert (frame["low"] <= frame["grounding"] + 1e-12).all()
    assert len(g.plot().axes[0].get_lines()) >= 3


def test_counterfactual_clips_and_errors(setup):
    model, task, _, clips, labels = setup
    swapped = al.corrupt_clips(clips, "swap", labels=labels, seed=1)
    for i, (clip, new) in enumerate(zip(clips, swapped)):
        assert len(new) == len(clip)
        source = [j for j, c in enumerate(clips) if np.array_equal(c[: len(new)][: 1000], new[:1000])]
        assert source and all(labels[j] != labels[i] for j in source)
    np.testing.assert_array_equal(al.corrupt_clips(clips[:1], "reversed")[0], clips[0][::-1])
    noisy = al.corrupt_clips(clips[:1], "noise", snr_db=10, seed=0)[0]
    snr = 10 * np.log10(np.mean(clips[0] ** 2) / np.mean((noisy - clips[0]) ** 2))
    assert abs(snr - 10) < 0.5
    with pytest.raises(al.errors.CounterfactualError, match="at least two labels"):
        al.corrupt_clips(clips, "swap", labels=["male"] * 4)
    with pytest.raises(al.errors.CounterfactualError, match="unknown corruption"):
        al.corrupt_clips(clips, "backwards")
    one_label = _dataset(clips[:2], ["male", "male"], task)
    with pytest.raises(al.errors.CounterfactualError, match="swap needs clips of at least two labels"):
        al.grounding(model, one_label, task, conditions=("swap",), progress=False)
    with pytest.raises(al.errors.CounterfactualError, match="unknown conditions"):
        al.grounding(model, one_label, task, conditions=("mute",), progress=False)


def test_study_records_listening_resumably(setup, tmp_path):
    """Study(listening=...) writes per-clip rows that equal find_audio_heads and grounding run
    directly; a run killed mid-file redoes only the incomplete clip; a one-label data set leaves
    out the swap."""
    model, task, _, clips, labels = setup
    gender = _dataset(clips, labels, task)
    mono = _dataset(clips[:2], ["male", "male"], al.sakura_task("gender"))
    study = al.Study(model, [gender], prompts=["P3"], out=tmp_path, enrich=None, progress=False, batch_size=2,
                     listening={"conditions": ("silence", "swap", "no_audio")})
    study.run()
    heads, g = study.listening("gender")
    direct = al.find_audio_heads(model, gender, task, batch_size=2, progress=False)
    torch.testing.assert_close(heads.effect, direct.effect, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(heads.attention, direct.attention, atol=1e-6, rtol=1e-5)
    ref = al.grounding(model, gender, task, conditions=("silence", "swap", "no_audio"), batch_size=2, progress=False)
    assert g.listening_rate() == ref.listening_rate()
    for c in ("real", "silence", "swap", "no_audio"):
        assert torch.equal(g.correct[c], ref.correct[c])
    frame = study.listening_frame()
    assert set(frame["kind"]) == {"heads", "grounding"} and set(frame["attribute"]) == {"gender"}
    assert study.listening_figure("gender").is_file()

    from audiolens.study.listening import listening_path

    path = listening_path(study.store, study.model_name, "gender", "P3")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]) + lines[-3][:10])  # killed: last clip cut, a line cut short
    calls = []
    import audiolens.study.listening as phase

    original = phase.heads_of_batch
    phase.heads_of_batch = lambda m, b, t, mode: calls.append(list(b.ids)) or original(m, b, t, mode)
    try:
        study.run()
    finally:
        phase.heads_of_batch = original
    assert calls == [[gender.samples[-1].id]]
    again, _ = study.listening("gender")
    torch.testing.assert_close(again.effect, heads.effect, atol=1e-5, rtol=1e-4)
    assert len(path.read_text().splitlines()) == len(lines)

    one = al.Study(model, [mono], prompts=["P3"], out=tmp_path / "one", enrich=None, progress=False,
                   listening=True, log=lambda m: None)
    one.run()
    assert one.listening("gender")[1].conditions == ["silence", "noise", "reversed"]
    with pytest.raises(al.errors.CounterfactualError):
        al.Study(model, [gender], out=tmp_path / "bad", listening={"conditions": ("mute",)})


def test_reproduce_with_listening_from_the_command_line_options(setup, tmp_path):
    """``reproduce(..., listening=True)`` (what ``audiolens reproduce --listening`` calls) records
    the listening rows of every attribute and draws its figure."""
    from audiolens.cli import build_parser

    assert build_parser().parse_args(["reproduce", "--listening"]).listening is True
    model, task, _, clips, labels = setup
    data = _dataset(clips, labels, task)
    done = al.reproduce(model, [data], tmp_path, prompts=("P3",), n_probe=2, scales=(0.0, 1.0), progress=False,
                        echo=None, listening=True)
    assert done.figures["listening_gender"].is_file()
    heads, g = done.study.listening("gender")
    assert heads.ids == [s.id for s in data] and g.conditions == ["silence", "noise", "swap", "reversed"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for a CPU + CUDA split")
def test_listening_on_a_cpu_cuda_split(setup):
    """Attention by span and head interventions give the same numbers on a model split across
    CPU and GPU (every index and mean moves to the device of the activation it touches)."""
    from accelerate import dispatch_model

    model, task, batch, *_ = setup
    ref = al.models.tiny("qwen2_audio", seed=0)
    device_map = {"model.audio_tower": "cpu", "model.multi_modal_projector": "cpu",
                  "model.language_model.embed_tokens": "cpu", "model.language_model.rotary_emb": "cpu",
                  "model.language_model.layers.0": "cpu", "model.language_model.layers.1": "cpu",
                  "model.language_model.layers.2": 0, "model.language_model.layers.3": 0,
                  "model.language_model.norm": 0, "lm_head": 0}
    split = al.HookedAudioLM.from_hf(dispatch_model(ref.hf_model, device_map=device_map), model.processor)
    torch.testing.assert_close(al.attention_to_spans(split, batch).share, al.attention_to_spans(model, batch).share,
                               atol=1e-5, rtol=1e-4)
    lens = al.LogitLens(task)
    for iv in (al.HeadAblation({1: [0], 4: [1, 2]}, mode="mean", reference=batch), al.HeadScale({3: [0]}, factor=2.0)):
        torch.testing.assert_close(lens.run(split, batch, [iv]).label_logits, lens.run(model, batch, [iv]).label_logits,
                                   atol=1e-4, rtol=1e-4)


def test_mean_ablation_finder_takes_one_reference_pass(setup, monkeypatch):
    """With mode="mean" every head's ablation shares one reference pass, and each head's effect
    equals its own HeadAblation run at the answer token."""
    model, task, batch, *_ = setup
    calls = []
    original = type(model).run_with_cache
    monkeypatch.setattr(type(model), "run_with_cache", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    heads = al.find_audio_heads(model, batch, task, mode="mean", progress=False)
    assert len(calls) == 1
    monkeypatch.undo()
    lens = al.LogitLens(task, positions=("last",))
    plain = lens.run(model, batch).logits_at("last")[-1]
    rows, t = torch.arange(len(batch)), batch.targets
    others = plain.clone()
    others[rows, t] = float("-inf")
    rival = others.argmax(-1)
    for layer, h in [(2, 1), (4, 0)]:
        one = lens.run(model, batch, [al.HeadAblation({layer: [h]}, mode="mean", reference=batch, positions="last")])
        lg = one.logits_at("last")[-1]
        expected = (plain[rows, t] - plain[rows, rival]) - (lg[rows, t] - lg[rows, rival])
        torch.testing.assert_close(heads.effect[layer - 1, h], expected, atol=1e-5, rtol=1e-4)


def test_recorder_reads_only_passes_that_reach_the_queries(setup):
    """A pass that stops before the query rows (run_formats' shared audio prefix) or a cached
    step records nothing, and asking for the result then says why."""
    model, task, batch, *_ = setup
    rec = SpanAttentionRecorder(model, batch)
    with rec.recording():
        model.run_backbone(batch.chunk(0, batch.seq_len - 1))
    with pytest.raises(RuntimeError, match="whole sequence"):
        rec.result()
