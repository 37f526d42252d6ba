"""Pieces the tiny Qwen-Omni thinkers share: a tokenizer with the family's special tokens and an
offline processor.

The HF Qwen-Omni processors build a video processor, which needs torchvision, so the tiny builds
use :class:`~audiolens.models.tiny.processor.PlaceholderProcessor`: Whisper log-mel features
padded the way the family's processor pads them, and one placeholder per audio token as the
model's own length rule counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...architectures.templates import chatml_template
from .common import train_tokenizer
from .processor import PlaceholderProcessor

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase


def omni_tokenizer(
    audio_tokens: tuple[str, str, str], system: str | None, vocab_size: int = 512
) -> PreTrainedTokenizerBase:
    """A byte-level BPE with ChatML tokens and the family's ``(start, placeholder, end)`` audio
    tokens, writing them in the user turn as the family's template does."""
    start, placeholder, end = audio_tokens
    special = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", placeholder, start, end)
    return train_tokenizer(special, chatml_template(f"{start}{placeholder}{end}", system=system),
                           vocab_size=vocab_size)


def omni_text_ids(tokenizer: PreTrainedTokenizerBase, audio_tokens: tuple[str, str, str]) -> dict[str, int]:
    """Config ids of the audio tokens and the vocabulary, remapped into the tiny tokenizer."""
    start, placeholder, end = audio_tokens
    ids = tokenizer.convert_tokens_to_ids
    return {"audio": ids(placeholder), "audio_start": ids(start), "audio_end": ids(end),
            "user": tokenizer("user", add_special_tokens=False)["input_ids"][0],
            "pad": tokenizer.pad_token_id, "eos": tokenizer.eos_token_id, "vocab": len(tokenizer)}


def omni_processor(
    tokenizer: PreTrainedTokenizerBase,
    placeholder: str,
    n_audio_tokens: Callable[[torch.Tensor], torch.Tensor],
    *,
    n_mels: int,
    window_seconds: int,
    padding: str | bool,
) -> PlaceholderProcessor:
    """Whisper features (``input_features``, ``feature_attention_mask``) padded as the family's
    processor pads them (``"max_length"``: the whole window; ``True``: the longest clip), and
    ``n_audio_tokens(feature_lengths)`` placeholders per clip."""
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=16000, hop_length=160,
                                 chunk_length=window_seconds)

    def features(waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        out = fe(list(waves), sampling_rate=fe.sampling_rate, return_attention_mask=True,
                 padding=padding, truncation=padding == "max_length", return_tensors="pt")
        return {"input_features": out["input_features"], "feature_attention_mask": out["attention_mask"]}

    def counts(feats: dict[str, torch.Tensor]) -> list[int]:
        return [int(n) for n in n_audio_tokens(feats["feature_attention_mask"].sum(-1))]

    return PlaceholderProcessor(tokenizer, fe, placeholder, features, counts)


def set_attn(config: PretrainedConfig, attn_implementation: str) -> None:
    """Set the attention implementation on ``config`` and every sub-config."""
    config._attn_implementation = attn_implementation
    for name in dir(config):
        sub = getattr(config, name, None) if name.endswith("_config") else None
        if sub is not None and hasattr(sub, "to_dict"):
            set_attn(sub, attn_implementation)


def tiny_vision(d_model: int, **extra: Any) -> dict[str, Any]:
    """A one-block vision encoder (never run on audio input, but built with the thinker)."""
    return {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
            "out_hidden_size": d_model, **extra}
