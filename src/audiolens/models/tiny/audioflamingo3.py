"""Tiny random-weight Audio Flamingo 3: the family's own processor with short Whisper windows.

The encoder adds a learned position table of ``max_source_positions`` rows to every window, so
the config's table length is set from the feature extractor's window (frames / 2): a window of
any length works as long as the two agree, exactly as in the real model (3000 frames, 1500).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ...architectures.templates import chatml_template
from .common import seeded, train_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, WhisperFeatureExtractor

    from ...hooked import HookedAudioLM

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>")

# AF3's template: a default system turn, then the audio placeholder in the user turn.
CHAT_TEMPLATE = chatml_template("<sound>")


def whisper_features(window_seconds: int, n_mels: int) -> WhisperFeatureExtractor:
    """A 16 kHz Whisper feature extractor whose fixed window is ``window_seconds`` long."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=n_mels, sampling_rate=16000, hop_length=160, chunk_length=window_seconds
    )


def encoder_config(fe: WhisperFeatureExtractor, d_model: int = 64, n_layers: int = 2) -> dict[str, Any]:
    """An ``audioflamingo3_encoder`` config whose position table fits ``fe``'s window."""
    return {
        "model_type": "audioflamingo3_encoder",
        "num_mel_bins": fe.feature_size,
        "num_hidden_layers": n_layers,
        "num_attention_heads": 4,
        "intermediate_size": d_model * 4,
        "hidden_size": d_model,
        # The encoder's stride-2 convolution halves the frame count before the position table.
        "max_source_positions": fe.nb_max_frames // 2,
    }


def qwen2_text_config(tok: PreTrainedTokenizerBase, n_layers: int, d_model: int, n_heads: int = 4) -> dict[str, Any]:
    """A small Qwen2 decoder config over ``tok``'s vocabulary."""
    return {
        "model_type": "qwen2",
        "vocab_size": len(tok),
        "hidden_size": d_model,
        "intermediate_size": d_model * 4,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": max(1, n_heads // 2),
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
    }


def set_attention(config: Any, attn_implementation: str) -> Any:
    """``config`` with ``attn_implementation`` on it and each of its sub-configs."""
    config._attn_implementation = attn_implementation
    for name in ("text_config", "audio_config"):
        sub = getattr(config, name, None)
        if sub is not None:
            sub._attn_implementation = attn_implementation
    return config


def tiny_audioflamingo3(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    window_seconds: int = 3,
    n_mels: int = 80,
) -> HookedAudioLM:
    """A random-weight Audio Flamingo 3 wrapped as a HookedAudioLM, deterministic for a seed.

    ``window_seconds`` is the feature extractor's fixed window (30 in the real model).

    Example:
        >>> model = tiny_audioflamingo3(seed=0)
        >>> model.architecture.name, model.max_audio_seconds
        ('audioflamingo3', 3.0)
    """
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
    )

    from ...hooked import HookedAudioLM

    tok = train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE)
    fe = whisper_features(window_seconds, n_mels)
    processor = AudioFlamingo3Processor(fe, tok, chat_template=CHAT_TEMPLATE, audio_token="<sound>")
    config = AudioFlamingo3Config(
        audio_config=encoder_config(fe),
        text_config=qwen2_text_config(tok, n_layers, d_model),
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
    )
    hf_model = seeded(seed, AudioFlamingo3ForConditionalGeneration, set_attention(config, attn_implementation))
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
