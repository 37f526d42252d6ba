"""GLM-ASR: the placeholder (written ``<|pad|>``) is a token of its own, not the padding token,
so left padding never counts as audio; a window must split into whole four-frame groups."""

import pytest
import torch
from test_families import LABELS, family_clips

import audiolens as al


def test_placeholder_is_not_padding():
    model = al.models.tiny("glmasr", n_layers=1)
    tok = model.tokenizer
    assert model.audio_token_id == model.hf_model.config.audio_token_id
    assert tok.convert_ids_to_tokens(model.audio_token_id) == "<|pad|>" != tok.pad_token
    batch = model.prepare(family_clips(), 16000, al.sakura_task("gender").prompt("P3"), labels=LABELS)
    padding = batch.inputs["attention_mask"] == 0
    assert padding.any() and not (batch.spans["audio"] & padding).any()
    assert torch.equal(batch.spans["audio"], batch.inputs["input_ids"] == model.hf_model.config.audio_token_id)


def test_window_must_split_into_four_frame_groups():
    with pytest.raises(ValueError, match="multiple of 8 mel frames"):
        al.models.tiny("glmasr", window_seconds=3)
