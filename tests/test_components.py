"""Attention patterns, span positions and hook-name errors, against HF's own computations."""

import pytest
import torch

import audiolens as al


def test_pattern_equals_hf_eager_attentions(tiny_model, gender_batch):
    """The SDPA run's hook_pattern equals what HF's eager attention returns with
    output_attentions=True on a model with the same weights."""
    eager = al.models.tiny_qwen2_audio(seed=0, attn_implementation="eager")
    with torch.no_grad():
        ref = eager.hf_model(**gender_batch.inputs, output_attentions=True).attentions
    names = [f"blocks.{i}.attn.hook_pattern" for i in range(tiny_model.n_layers)]
    _, cache = tiny_model.run_with_cache(gender_batch, names_filter=names, positions=["last", "attribute"])
    rows = torch.arange(len(gender_batch))
    for i, name in enumerate(names):
        pattern = cache[name]  # (batch, head, 2, key)
        torch.testing.assert_close(pattern[:, :, 0], ref[i][:, :, -1], atol=1e-6, rtol=1e-5)
        attr = gender_batch.positions["attribute"]
        torch.testing.assert_close(pattern[:, :, 1], ref[i][rows, :, attr], atol=1e-6, rtol=1e-5)
        assert torch.all(pattern[gender_batch.spans["padding"][:, None, None, :].expand_as(pattern)] == 0)


def test_pattern_is_read_only(tiny_model, gender_batch):
    with pytest.raises(al.HookUnavailable, match="read-only"):
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("blocks.0.attn.hook_pattern", lambda act, hook: act * 0)])


def test_positions_over_a_span(tiny_model, gender_batch):
    _, full = tiny_model.run_with_cache(gender_batch, names_filter="blocks.1.hook_resid_post")
    _, spans = tiny_model.run_with_cache(gender_batch, names_filter="blocks.1.hook_resid_post", positions="audio")
    got = spans["blocks.1.hook_resid_post"]
    audio = gender_batch.spans["audio"]
    counts = audio.sum(1)
    assert got.shape[:2] == (len(gender_batch), int(counts.max()))
    for row in range(len(gender_batch)):
        n = int(counts[row])
        torch.testing.assert_close(got[row, :n], full["blocks.1.hook_resid_post"][row][audio[row]], rtol=0, atol=0)
        assert torch.isnan(got[row, n:]).all()  # shorter rows are padded with NaN


def test_integer_position_on_padding_raises(tiny_model, gender_batch):
    assert gender_batch.spans["padding"][:, 0].any()
    with pytest.raises(IndexError, match="padding in rows"):
        tiny_model.run_with_cache(gender_batch, positions=0)


def test_misspelt_hook_name_suggests_the_right_one(tiny_model, gender_batch):
    with pytest.raises(KeyError, match=r"did you mean.*blocks.1.hook_resid_post"):
        tiny_model.run_with_cache(gender_batch, names_filter=["blocks.1.hook_resid_pots"])
    with pytest.raises(KeyError, match=r"did you mean.*blocks.1.hook_mlp_out"):
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("blocks.1.hook_mlp_outt", lambda act, hook: act)])


def test_nnsight_backend_edits_components_like_hooks(tiny_model, gender_batch, gender_task):
    from audiolens.interventions import HookIntervention

    lens = al.LogitLens(gender_task)

    def zero_head(act, hook, batch):
        act = act.clone()
        act[:, :, 1] = 0
        return act

    edits = [HookIntervention("blocks.1.attn.hook_z", zero_head),
             HookIntervention("blocks.2.hook_mlp_out", lambda act, hook, batch: act * 0.5),
             HookIntervention("blocks.0.hook_attn_out", lambda act, hook, batch: act + 1.0),
             HookIntervention("blocks.3.hook_resid_mid", lambda act, hook, batch: act * 0.9)]
    a = lens.run(tiny_model, gender_batch, edits)
    b = lens.run(tiny_model, gender_batch, edits, backend="nnsight")
    torch.testing.assert_close(b.label_logits, a.label_logits, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a.label_logits, lens.run(tiny_model, gender_batch).label_logits)


def test_remote_without_api_key_fails_fast(tiny_model, gender_batch, gender_task, monkeypatch):
    from nnsight import CONFIG

    from audiolens.backends.nnsight import RemoteUnavailable

    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    with pytest.raises(RemoteUnavailable, match="API key"):
        al.LogitLens(gender_task).run(tiny_model, gender_batch, backend="nnsight", remote=True)
    with pytest.raises(ValueError, match="unknown backend"):
        al.LogitLens(gender_task).run(tiny_model, gender_batch, backend="jax")


def test_text_only_model_with_an_audio_processor_is_refused(tiny_model, clips, gender_task):
    """A custom Architecture pointing at a text-only decoder would silently drop the audio."""
    arch = al.Architecture(name="text_only", hf_class="Qwen2ForCausalLM", layers="model.language_model.layers",
                           final_norm="model.language_model.norm", unembed="lm_head",
                           backbone="model.language_model", audio_token="<|AUDIO|>")
    model = al.HookedAudioLM.from_hf(tiny_model.hf_model, tiny_model.processor, architecture=arch)
    with pytest.raises(al.ArchitectureError, match="would ignore the audio"):
        model.prepare(clips[:1], 16000, gender_task.prompt("P3"))


def test_from_pretrained_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        al.HookedAudioLM.from_pretrained(str(tmp_path / "nonexistent"))


def test_zero_row_batches_are_refused(tiny_model, gender_task):
    with pytest.raises(ValueError, match="at least one audio clip"):
        tiny_model.prepare([], 16000, gender_task.prompt("P3"))


def test_sampling_rate_types(tiny_model, clips, gender_task):
    import numpy as np

    a = tiny_model.prepare(clips[:1], np.int64(16000), gender_task.prompt("P3"))
    b = tiny_model.prepare(clips[:1], 16000.0, gender_task.prompt("P3"))
    assert torch.equal(a.inputs["input_features"], b.inputs["input_features"])
    with pytest.raises(ValueError, match="whole number"):
        tiny_model.prepare(clips[:1], 16000.5, gender_task.prompt("P3"))
