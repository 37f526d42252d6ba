"""Tiny random-weight Qwen3-ASR: the family's own processor and feature extractor (128-bin
default shrunk to ``n_mels``), a small chunked encoder and a Qwen3 decoder.

The processor pads features to the longest clip, rounded up to ``2 · n_window`` frames (one
encoder chunk); the encoder reads ``n_window`` from its own config, so the two must agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...architectures.templates import chatml_template
from .audioflamingo3 import set_attention
from .common import seeded, train_tokenizer

if TYPE_CHECKING:
    from ...hooked import HookedAudioLM

NAMED_TOKENS = {
    "audio_token": "<|audio_pad|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
}
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", *NAMED_TOKENS.values())

# Qwen3-ASR's template: an empty system turn (where a context would go), audio in the user turn.
CHAT_TEMPLATE = chatml_template("<|audio_start|><|audio_pad|><|audio_end|>", system="")


def tiny_qwen3_asr(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    n_mels: int = 80,
) -> HookedAudioLM:
    """A random-weight Qwen3-ASR wrapped as a HookedAudioLM, deterministic for a seed.

    Example:
        >>> model = tiny_qwen3_asr(seed=0)
        >>> model.architecture.name, model.n_layers
        ('qwen3_asr', 4)
    """
    from transformers import (
        Qwen3ASRConfig,
        Qwen3ASRFeatureExtractor,
        Qwen3ASRForConditionalGeneration,
        Qwen3ASRProcessor,
    )

    from ...hooked import HookedAudioLM

    tok = train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, named_tokens=NAMED_TOKENS)
    fe = Qwen3ASRFeatureExtractor(feature_size=n_mels)
    processor = Qwen3ASRProcessor(fe, tok, chat_template=CHAT_TEMPLATE)
    n_heads = 4
    config = Qwen3ASRConfig(
        audio_config={
            "model_type": "qwen3_asr_encoder",
            "num_mel_bins": fe.feature_size,
            "encoder_layers": 2,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 256,
            "d_model": 64,
            # The processor pads with its own default n_window (50): the encoder must chunk alike.
            "n_window": fe.n_window,
            "n_window_infer": 16 * fe.n_window,  # the real ratio (800 frames for n_window 50)
            "downsample_hidden_size": 16,
            "output_dim": d_model,
        },
        text_config={
            "model_type": "qwen3",
            "vocab_size": len(tok),
            "hidden_size": d_model,
            "intermediate_size": d_model * 4,
            "num_hidden_layers": n_layers,
            "num_attention_heads": n_heads,
            "num_key_value_heads": max(1, n_heads // 2),
            "head_dim": d_model // n_heads,
            "max_position_embeddings": 1024,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        audio_token_id=tok.convert_tokens_to_ids(NAMED_TOKENS["audio_token"]),
        pad_token_id=tok.pad_token_id,
    )
    hf_model = seeded(seed, Qwen3ASRForConditionalGeneration, set_attention(config, attn_implementation))
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
