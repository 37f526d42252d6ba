"""Tiny random-weight Qwen2-Audio: the family's own processor with short Whisper windows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

from ...architectures.templates import chatml_template
from .common import seeded, train_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Qwen2AudioProcessor

    from ...hooked import HookedAudioLM

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
)

# Qwen2-Audio-Instruct's template: audio items in the user turn, a default system turn.
CHAT_TEMPLATE = chatml_template("Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n")


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE with Qwen2-Audio's special tokens and chat template.

    Example:
        >>> tok = build_tokenizer()
        >>> tok.convert_ids_to_tokens(tok(" female")["input_ids"])
        ['Ġfemale']
    """
    return train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, corpus=corpus, vocab_size=vocab_size)


def build_processor(
    tokenizer: PreTrainedTokenizerBase | None = None, window_seconds: int = 3, n_mels: int = 80
) -> Qwen2AudioProcessor:
    """A Qwen2-Audio processor with short Whisper windows (``window_seconds`` of 16 kHz audio)."""
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    features = WhisperFeatureExtractor(
        feature_size=n_mels, sampling_rate=16000, hop_length=160, chunk_length=window_seconds
    )
    return Qwen2AudioProcessor(features, tokenizer, chat_template=CHAT_TEMPLATE)


def tiny_qwen2_audio_config(
    processor: Qwen2AudioProcessor,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    audio_layers: int = 2,
    audio_d_model: int = 64,
    attn_implementation: str = "sdpa",
):
    """A small ``Qwen2AudioConfig`` matching ``processor``'s vocabulary and window length."""
    from transformers import Qwen2AudioConfig

    tok = processor.tokenizer
    fe = processor.feature_extractor
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": fe.feature_size,
            "encoder_layers": audio_layers,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": audio_d_model * 4,
            "d_model": audio_d_model,
            # The encoder's two convolutions halve the frame count once.
            "max_source_positions": fe.nb_max_frames // 2,
        },
        text_config={
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
        },
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    config._attn_implementation = attn_implementation
    config.text_config._attn_implementation = attn_implementation
    config.audio_config._attn_implementation = attn_implementation
    return config


def tiny_qwen2_audio(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
) -> HookedAudioLM:
    """A random-weight Qwen2-Audio (``n_layers`` decoder layers) wrapped as a HookedAudioLM.

    Deterministic for a seed; builds in well under a second on a CPU.

    Example:
        >>> model = tiny_qwen2_audio(seed=0)
        >>> model.n_layers
        4
    """
    from transformers import Qwen2AudioForConditionalGeneration

    from ...hooked import HookedAudioLM

    processor = build_processor()
    config = tiny_qwen2_audio_config(
        processor, n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation
    )
    hf_model = seeded(seed, Qwen2AudioForConditionalGeneration, config)
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
