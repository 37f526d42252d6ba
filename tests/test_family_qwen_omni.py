"""Qwen2.5-Omni and Qwen3-Omni: 2-D position ids against the model's own 3-D rotary positions,
and the composite hub checkpoints (wrapping, loading without the speech talker)."""

import json

import numpy as np
import pytest
import torch
import transformers

import audiolens as al
from audiolens.models.tiny.qwen2_5_omni import tiny_qwen2_5_omni
from audiolens.models.tiny.qwen3_omni_moe import tiny_qwen3_omni_moe

COMPOSITES = {"qwen2_5_omni": tiny_qwen2_5_omni, "qwen3_omni_moe": tiny_qwen3_omni_moe}
THINKERS = {"qwen2_5_omni": "qwen2_5_omni_thinker", "qwen3_omni_moe": "qwen3_omni_moe_thinker"}


def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 30000, 9000)]


@pytest.fixture(scope="module")
def gender():
    return al.sakura_task("gender")


@pytest.fixture(scope="module", params=sorted(THINKERS.values()))
def thinker(request, gender):
    model = al.models.tiny(request.param, seed=0, n_layers=2)
    return model, model.prepare(clips(), 16000, gender.prompt("P3"), labels=["male", "female", "male"])


def test_2d_position_ids_equal_the_models_own_rope_index(thinker):
    model, batch = thinker
    inputs, real = batch.inputs, batch.inputs["attention_mask"].bool()
    # The model's own 3-D positions for this audio-only input: three equal rows, our 2-D ids.
    rope, _ = model.hf_model.model.get_rope_index(
        inputs["input_ids"], attention_mask=inputs["attention_mask"],
        audio_seqlens=inputs["feature_attention_mask"].sum(-1))
    assert rope.shape == (3, *inputs["input_ids"].shape)
    for axis in range(3):
        assert torch.equal(rope[axis][real], inputs["position_ids"][real])
    with torch.no_grad():
        explicit = model.hf_model(**inputs).logits
        own = model.hf_model(**{k: v for k, v in inputs.items() if k != "position_ids"}).logits
    torch.testing.assert_close(explicit[real], own[real], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module", params=sorted(COMPOSITES))
def composite(request):
    hf_model, processor = COMPOSITES[request.param](seed=0)
    return request.param, hf_model, processor


def test_composite_checkpoint_wraps_its_thinker(composite, gender):
    name, hf_model, processor = composite
    model = al.HookedAudioLM.from_hf(hf_model, processor)
    assert model.hf_model is hf_model.thinker
    assert model.architecture.name == THINKERS[name]
    batch = model.prepare(clips(), 16000, gender.prompt("P3"), labels=["male", "female", "male"])
    res = al.LogitLens(gender).run(model, batch)
    with torch.no_grad():
        ref = hf_model.thinker(**batch.inputs).logits[:, -1, list(res.label_token_ids)]
    torch.testing.assert_close(res.logits_at("last")[model.n_layers], ref, atol=2e-4, rtol=1e-4)


def test_composite_checkpoint_loads_as_its_thinker(composite, gender, tmp_path, monkeypatch):
    """A saved composite loads as its thinker alone (talker and vocoder never built), with the
    same logits. Real checkpoints bring an HF processor (AutoProcessor); the tiny build's offline
    one stands in for it here."""
    name, hf_model, processor = composite
    hf_model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == name
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: processor)
    loaded = al.HookedAudioLM.from_pretrained(str(tmp_path))
    assert type(loaded.hf_model) is type(hf_model.thinker)
    assert loaded.architecture.name == THINKERS[name]

    batch = loaded.prepare(clips(), 16000, gender.prompt("P3"), labels=["male", "female", "male"])
    with torch.no_grad():
        ref = hf_model.thinker(**batch.inputs).logits[:, -1]
    torch.testing.assert_close(loaded(batch, positions="last")[:, 0], ref, atol=1e-5, rtol=1e-5)


def test_thinker_save_and_load_round_trip(thinker, tmp_path, monkeypatch):
    model, batch = thinker
    model.hf_model.save_pretrained(tmp_path)
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: model.processor)
    loaded = al.HookedAudioLM.from_pretrained(str(tmp_path))
    assert loaded.architecture.name == model.architecture.name
    torch.testing.assert_close(loaded(batch, positions="last"), model(batch, positions="last"), atol=0, rtol=0)
