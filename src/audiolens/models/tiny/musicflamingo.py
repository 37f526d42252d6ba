"""Tiny random-weight Music Flamingo: Audio Flamingo 3's tiny encoder and decoder, plus the
family's sound boundary tokens and rotary time embedding, with its own processor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ...architectures.templates import chatml_template
from .audioflamingo3 import encoder_config, qwen2_text_config, set_attention, whisper_features
from .common import seeded, train_tokenizer

if TYPE_CHECKING:
    from ...hooked import HookedAudioLM

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>", "<|sound_bos|>", "<|sound_eos|>")

# The template writes one <sound>; the processor expands it and wraps it in <|sound_bos|>/<|sound_eos|>.
CHAT_TEMPLATE = chatml_template("<sound>")


def tiny_musicflamingo(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    window_seconds: int = 3,
    n_mels: int = 80,
) -> HookedAudioLM:
    """A random-weight Music Flamingo wrapped as a HookedAudioLM, deterministic for a seed.

    Example:
        >>> model = tiny_musicflamingo(seed=0)
        >>> model.architecture.name, model.n_layers
        ('musicflamingo', 4)
    """
    from transformers import (
        MusicFlamingoConfig,
        MusicFlamingoForConditionalGeneration,
        MusicFlamingoProcessor,
    )

    from ...hooked import HookedAudioLM

    tok = train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE)
    fe = whisper_features(window_seconds, n_mels)
    processor = MusicFlamingoProcessor(fe, tok, chat_template=CHAT_TEMPLATE)
    config = MusicFlamingoConfig(
        audio_config=encoder_config(fe),
        text_config=qwen2_text_config(tok, n_layers, d_model),
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
        audio_bos_token_id=tok.convert_tokens_to_ids("<|sound_bos|>"),
        audio_eos_token_id=tok.convert_tokens_to_ids("<|sound_eos|>"),
        audio_frame_step=fe.hop_length / fe.sampling_rate,
    )
    hf_model = seeded(seed, MusicFlamingoForConditionalGeneration, set_attention(config, attn_implementation))
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
