"""Granite Speech (``granite_speech``): conformer encoder, Q-former projector, Granite decoder.

Granite's decoder scales both residual branches, ``post = pre + m·attn + m·mlp`` with
``residual_multiplier`` m, so the mid-residual hook adds ``m ·`` the attention output. The speech
wrapper applies its head without Granite's ``logits_scaling`` (the model's own logits are
``lm_head(h)``), so the lens does the same. Its chat template takes string contents: the audio
token is written into the user text. Its conformer encoder has no padding mask, so each clip is
encoded alone (:mod:`audiolens.architectures.clipwise`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..tasks import Prompt
from .base import Architecture, register, with_auto_processor
from .clipwise import clipwise_audio
from .lora import adapter_loaded, missing_adapter


def render(processor: Any, prompt: Prompt) -> str:
    """The user turn is ``<|audio|>`` followed by the question, as in the model card (the chat
    template is the tokenizer's: the processor ships none)."""
    content = processor.audio_token + (prompt.question or "")
    messages = [{"role": "user", "content": content}]
    text = processor.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + prompt.prefix


def embed(hf_model: torch.nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    """One row's token embeddings with its audio merged in, as ``GraniteSpeechModel`` builds
    them (the decoder then applies ``embedding_multiplier`` itself)."""
    inner: Any = hf_model.model  # GraniteSpeechModel
    features = inputs["input_features"].to(inner.dtype)
    audio = inner.get_audio_features(features, return_dict=True).pooler_output
    return inner.get_merged_audio_embeddings(inputs["input_ids"], audio, inputs.get("input_features_mask"))


def load_model(name_or_path: str, **kwargs: Any) -> torch.nn.Module:
    """``GraniteSpeechForConditionalGeneration.from_pretrained`` with its LoRA adapter checked.

    Released checkpoints set ``has_lora_adapter`` and ship the adapter beside the weights;
    transformers attaches it (active, for every forward) when peft is installed, and skips it
    silently otherwise, so a missing adapter raises here. ``has_lora_adapter=False`` reads the
    base decoder instead (an adapter transformers attached anyway is disabled).
    """
    from transformers import GraniteSpeechForConditionalGeneration

    model = GraniteSpeechForConditionalGeneration.from_pretrained(name_or_path, **kwargs)
    if model.config.has_lora_adapter and not adapter_loaded(model):
        raise missing_adapter("Granite Speech", repr(name_or_path), "has_lora_adapter=False")
    if not model.config.has_lora_adapter and adapter_loaded(model):
        model.disable_adapters()
    return model


GRANITE_SPEECH = register(Architecture(
    name="granite_speech",
    hf_class="GraniteSpeechForConditionalGeneration",
    audio_token="<|audio|>",
    residual_multiplier_key="residual_multiplier",
    tokens_per_second=10.0,
    render=render,
    **clipwise_audio(embed),
    load=with_auto_processor(load_model),
))
