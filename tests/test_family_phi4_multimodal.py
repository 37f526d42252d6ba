"""Phi-4-multimodal quirks: decoder at the top level, its own audio input keys, clip-wise encoding,
and the speech LoRA adapter real checkpoints keep in ``speech-lora/``."""

import family_checks as fc
import pytest
import torch
from test_families import LABELS, family_clips
from transformers.integrations.peft import MIN_PEFT_VERSION  # (older peft: transformers refuses it)

import audiolens as al
from audiolens.architectures import phi4_multimodal
from audiolens.architectures.inputs import render_prompt


@pytest.fixture(scope="module")
def model():
    m = al.models.tiny("phi4_multimodal", seed=0)
    fc.randomize_norm_gains(m.hf_model)
    return m


def test_paths_and_placeholder(model):
    assert model.layers is model.hf_model.model.layers
    assert model.final_norm is model.hf_model.model.norm
    assert model.audio_token_id == model.hf_model.config.audio_config.audio_token_id
    assert model.audio_token_id == model.tokenizer.convert_tokens_to_ids("<|audio|>")


def test_native_inputs_are_per_row(model):
    """The processor's own batch (audio_input_features, audio_embed_sizes, audio_attention_mask)
    has one entry per clip, so it could form an AudioBatch as it is."""
    text = render_prompt(model.processor, al.sakura_task("gender").prompt("P3"))
    model.tokenizer.padding_side = "left"
    enc = model.processor(text=[text] * 3, audio=family_clips(), sampling_rate=16000,
                          text_kwargs={"padding": True})
    assert {"audio_input_features", "audio_embed_sizes", "audio_attention_mask"} <= set(enc)
    assert all(v.shape[0] == 3 for v in enc.values())
    counts = (enc["input_ids"] == model.audio_token_id).sum(1)
    assert counts.tolist() == enc["audio_embed_sizes"].tolist()


def test_padded_batch_rows_equal_the_model_on_each_clip_alone(model):
    task = al.sakura_task("gender")
    prompt = task.prompt("P3")
    clips = family_clips()
    res = al.LogitLens(task).run(model, model.prepare(clips, 16000, prompt, labels=LABELS))
    text = render_prompt(model.processor, prompt)
    for i, clip in enumerate(clips):
        native = dict(model.processor(text=[text], audio=[clip], sampling_rate=16000))
        logits = fc.hf_forward(model, native).logits[0, -1]
        torch.testing.assert_close(res.logits_at("last")[model.n_layers][i], logits[list(res.label_token_ids)],
                                   atol=fc.ATOL, rtol=1e-4)


def test_load_attaches_the_speech_adapter(tmp_path):
    peft = pytest.importorskip("peft", minversion=MIN_PEFT_VERSION)
    model = al.models.tiny("phi4_multimodal", seed=0)
    hf = model.hf_model
    hf.save_pretrained(tmp_path)
    torch.manual_seed(3)
    hf.add_adapter(peft.LoraConfig(r=4, target_modules=["qkv_proj", "o_proj"], init_lora_weights=False),
                   adapter_name="speech")
    hf.save_pretrained(tmp_path / "speech-lora")  # adapter weights only
    text = render_prompt(model.processor, al.sakura_task("gender").prompt("P3"))
    inputs = dict(model.processor(text=[text], audio=family_clips()[:1], sampling_rate=16000))
    with torch.no_grad():
        ref = hf(**inputs).logits[:, -1]
        loaded = phi4_multimodal.load_model(str(tmp_path))
        assert loaded.active_adapters() == ["speech"]
        torch.testing.assert_close(loaded(**inputs).logits[:, -1], ref)
        base = phi4_multimodal.load_model(str(tmp_path), speech_adapter=None)
        assert not torch.allclose(base(**inputs).logits[:, -1], ref, atol=1e-3)
    with pytest.raises(al.ArchitectureError, match="speech_adapter=None"):
        phi4_multimodal.load_model(str(tmp_path), speech_adapter="vision-lora")


def test_hf_processor_batches_equal_the_offline_ones(model):
    """The HF Phi4MultimodalProcessor (audio side as released; a blank image processor stands in
    for the torchvision one) gives the same batch and passes the family checks."""
    from transformers import (
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.image_processing_utils import BaseImageProcessor

    tok = PreTrainedTokenizerFast(
        tokenizer_object=model.tokenizer.backend_tokenizer, eos_token="<|end|>", pad_token="<|endoftext|>",
        padding_side="left", extra_special_tokens={"image_token": "<|image|>", "audio_token": "<|audio|>"})
    processor = Phi4MultimodalProcessor(BaseImageProcessor(), Phi4MultimodalFeatureExtractor(), tok,
                                        chat_template=model.tokenizer.chat_template)
    hf = al.HookedAudioLM.from_hf(model.hf_model, processor)
    task = al.sakura_task("gender")
    ours = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    theirs = hf.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    torch.testing.assert_close(theirs.inputs["inputs_embeds"], ours.inputs["inputs_embeds"])
    assert torch.equal(theirs.spans["audio"], ours.spans["audio"])
    for check in fc.CHECKS:
        check(hf, theirs, task)
