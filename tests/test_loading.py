"""The real loading path, and TransformerLens's own bridge as an independent reference."""

import copy

import pytest
import torch

import audiolens as al


@pytest.fixture(scope="module")
def saved_dir(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-qwen2-audio")
    tiny_model.hf_model.save_pretrained(path)
    tiny_model.processor.save_pretrained(path)
    return path


def test_from_pretrained_round_trip(tiny_model, saved_dir, gender_batch, gender_task):
    loaded = al.HookedAudioLM.from_pretrained(str(saved_dir))
    assert loaded.n_layers == tiny_model.n_layers
    assert loaded.architecture.name == "qwen2_audio"
    # The saved processor renders and tokenizes exactly as the in-memory one.
    clips_batch = loaded.prepare(
        [torch.zeros(16000) + 0.1], 16000, gender_task.prompt("P3"), labels=["female"]
    )
    same = tiny_model.prepare([torch.zeros(16000) + 0.1], 16000, gender_task.prompt("P3"), labels=["female"])
    assert torch.equal(clips_batch.inputs["input_ids"], same.inputs["input_ids"])
    torch.testing.assert_close(clips_batch.inputs["input_features"], same.inputs["input_features"])
    lens = al.LogitLens(gender_task)
    torch.testing.assert_close(
        lens.run(loaded, gender_batch).label_logits, lens.run(tiny_model, gender_batch).label_logits,
        rtol=0, atol=0,
    )


def test_from_pretrained_dtype(saved_dir, gender_batch, gender_task):
    half = al.HookedAudioLM.from_pretrained(str(saved_dir), torch_dtype=torch.bfloat16)
    assert half.W_U.dtype == torch.bfloat16
    res = al.LogitLens(gender_task).run(half, gender_batch)
    assert res.label_logits.dtype == torch.float32 and torch.isfinite(res.label_logits).all()


def test_residuals_equal_transformer_bridge(tiny_model, gender_batch, saved_dir):
    from transformer_lens.model_bridge import TransformerBridge

    # The bridge edits the model and tokenizer it wraps: give it copies.
    bridge = TransformerBridge.boot_transformers(
        str(saved_dir), hf_model=copy.deepcopy(tiny_model.hf_model),
        tokenizer=copy.deepcopy(tiny_model.tokenizer),
    )
    inputs = dict(gender_batch.inputs)
    with torch.no_grad():
        _, theirs = bridge.run_with_cache(inputs.pop("input_ids"), **inputs)
    _, ours = tiny_model.run_with_cache(gender_batch, names_filter=lambda n: n.endswith("resid_post"))
    real = gender_batch.inputs["attention_mask"].bool()  # padding positions carry no meaning
    for layer in range(tiny_model.n_layers):
        name = f"blocks.{layer}.hook_resid_post"
        # The bridge re-implements attention eagerly; ours runs HF's SDPA.
        torch.testing.assert_close(ours[name][real], theirs[name][real], rtol=1e-4, atol=1e-5)
