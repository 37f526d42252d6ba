"""Granite Speech quirks: scaled residual branches, logits without ``logits_scaling``, an offline
feature extractor, clip-wise encoding, and the LoRA adapter real checkpoints carry.

``fixtures/granite_speech_features.npz`` holds two clips and the output of transformers 5.23's
``GraniteSpeechFeatureExtractor()`` on them, computed with torchaudio 2.11
(``input_features``, ``input_features_mask``, ``audio_embed_sizes``).
"""

import shutil
from pathlib import Path

import family_checks as fc
import numpy as np
import pytest
import torch
from test_families import LABELS, family_clips
from transformers.integrations.peft import MIN_PEFT_VERSION  # (older peft: transformers refuses it)

import audiolens as al
from audiolens.architectures import granite_speech
from audiolens.models.tiny.granite_speech import GraniteMelFeatures

FIXTURE = Path(__file__).parent / "fixtures" / "granite_speech_features.npz"


@pytest.fixture(scope="module")
def model():
    m = al.models.tiny("granite_speech", seed=0)
    fc.randomize_norm_gains(m.hf_model)
    return m


def test_features_equal_the_real_extractor():
    ref = np.load(FIXTURE)
    clips = [ref["clip0"], ref["clip1"]]
    ours = GraniteMelFeatures()(clips)
    np.testing.assert_allclose(ours["input_features"].numpy(), ref["input_features"], atol=1e-5)
    np.testing.assert_array_equal(ours["input_features_mask"].numpy(), ref["input_features_mask"])
    assert GraniteMelFeatures().audio_embed_sizes(len(c) for c in clips) == ref["audio_embed_sizes"].tolist()


def test_tiny_build_scales_like_real_checkpoints(model):
    text = model.hf_model.config.text_config
    assert (text.residual_multiplier, text.embedding_multiplier, text.logits_scaling) == (0.22, 12.0, 8.0)
    assert model.cfg.residual_multiplier == 0.22


def test_model_logits_are_the_head_without_logits_scaling(model):
    """The speech wrapper's logits are lm_head(final-normed h), not divided by logits_scaling:
    the lens (which applies the head alone) must match them."""
    task = al.sakura_task("gender")
    batch = model.prepare(family_clips()[:1], 16000, task.prompt("P3"))
    out = fc.hf_forward(model, batch.inputs, output_hidden_states=True)
    with torch.no_grad():
        head = model.hf_model.lm_head(out.hidden_states[-1][:, -1])
    torch.testing.assert_close(out.logits[:, -1], head)
    assert not torch.allclose(out.logits[:, -1], head / 8.0)


def test_padded_batch_rows_equal_the_model_on_each_clip_alone(model):
    """Each padded row equals the HF model's own forward on the processor's native inputs
    (token ids + features, the encoder run inside the model) for that clip alone."""
    task = al.sakura_task("gender")
    clips = family_clips()
    prompt = task.prompt("P3")
    batch = model.prepare(clips, 16000, prompt, labels=LABELS)
    res = al.LogitLens(task).run(model, batch)
    text = granite_speech.render(model.processor, prompt)
    for i, clip in enumerate(clips):
        native = model.processor(text=[text], audio=[clip], sampling_rate=16000)
        logits = fc.hf_forward(model, {k: v for k, v in native.items()}).logits[0, -1]
        torch.testing.assert_close(res.logits_at("last")[model.n_layers][i], logits[list(res.label_token_ids)],
                                   atol=fc.ATOL, rtol=1e-4)


def test_prompt_has_granite_layout(model):
    """The audio token is written into the user text (Granite's template concatenates strings)."""
    prompt = al.sakura_task("gender").prompt("P3")
    rendered = granite_speech.render(model.processor, prompt)
    assert rendered.count("<|audio|>") == 1
    assert f"<|start_of_role|>user<|end_of_role|><|audio|>{prompt.question}<|end_of_text|>" in rendered
    assert rendered.endswith("<|start_of_role|>assistant<|end_of_role|>" + prompt.prefix)
    batch = model.prepare(family_clips()[:1], 16000, prompt)
    ids = model.tokenizer(rendered.replace("<|audio|>", ""), add_special_tokens=False)["input_ids"]
    assert batch.seq_len == len(ids) + int(batch.spans["audio"].sum())


def _checkpoint_with_adapter(tmp_path, model):
    """Base weights saved first, then a random LoRA adapter saved beside them (the layout of
    released checkpoints); returns the folder and the adapted in-memory model."""
    peft = pytest.importorskip("peft", minversion=MIN_PEFT_VERSION)
    import transformers

    hf = model.hf_model
    hf.config.has_lora_adapter = True
    hf.save_pretrained(tmp_path / "ckpt")
    torch.manual_seed(3)
    hf.add_adapter(peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    transformers.PreTrainedModel.save_pretrained(hf, tmp_path / "adapter")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(tmp_path / "adapter" / name, tmp_path / "ckpt" / name)
    return tmp_path / "ckpt", hf


def test_load_attaches_the_lora_adapter(tmp_path):
    model = al.models.tiny("granite_speech", seed=0)
    folder, adapted = _checkpoint_with_adapter(tmp_path, model)
    text = granite_speech.render(model.processor, al.sakura_task("gender").prompt("P3"))
    inputs = dict(model.processor(text=[text], audio=family_clips()[:1], sampling_rate=16000))
    with torch.no_grad():
        ref = adapted(**inputs).logits[:, -1]
        loaded = granite_speech.load_model(str(folder))
        torch.testing.assert_close(loaded(**inputs).logits[:, -1], ref)
        base = granite_speech.load_model(str(folder), has_lora_adapter=False)
        assert not torch.allclose(base(**inputs).logits[:, -1], ref, atol=1e-3)
    (folder / "adapter_config.json").unlink()
    with pytest.raises(al.ArchitectureError, match="has_lora_adapter=False"):
        granite_speech.load_model(str(folder))


def test_real_processor_batches_equal_the_offline_ones(model):
    """With torchaudio importable, the HF GraniteSpeechProcessor (its chat template on the
    tokenizer, as released) gives the same batch and passes the family checks."""
    pytest.importorskip("torchaudio")
    from transformers import GraniteSpeechFeatureExtractor, GraniteSpeechProcessor

    real = al.HookedAudioLM.from_hf(
        model.hf_model, GraniteSpeechProcessor(GraniteSpeechFeatureExtractor(), model.tokenizer))
    task = al.sakura_task("gender")
    ours = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    theirs = real.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    torch.testing.assert_close(theirs.inputs["inputs_embeds"], ours.inputs["inputs_embeds"], atol=1e-5, rtol=1e-4)
    assert torch.equal(theirs.spans["audio"], ours.spans["audio"])
    for check in fc.CHECKS:
        check(real, theirs, task)
