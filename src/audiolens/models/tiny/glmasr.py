"""Tiny random-weight GLM-ASR: the family's own processor with short Whisper windows, a rotary
encoder that merges four frames per audio token, and a Llama decoder.

The merge reshapes the encoder output (frames / 2 of them) into groups of four, so a window
must give a multiple of eight mel frames (the real 3000-frame window does; 3 s would not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .audioflamingo3 import set_attention, whisper_features
from .common import seeded, train_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...hooked import HookedAudioLM

AUDIO_TOKEN = "<|pad|>"  # the processor's placeholder text; not the padding token
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|begin_of_audio|>",
    "<|end_of_audio|>",
    AUDIO_TOKEN,
)

# GLM-ASR's shape: "<|role|>\n" turns; an audio item is the placeholder between audio markers,
# followed by a fresh user header for the text that comes after it.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio' in content %}"
    "<|begin_of_audio|>" + AUDIO_TOKEN + "<|end_of_audio|><|user|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE with GLM-ASR's special tokens and chat template."""
    return train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE)


def tiny_glmasr(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    window_seconds: int = 4,
    n_mels: int = 80,
) -> HookedAudioLM:
    """A random-weight GLM-ASR wrapped as a HookedAudioLM, deterministic for a seed.

    Example:
        >>> model = tiny_glmasr(seed=0)
        >>> model.architecture.name, model.max_audio_seconds
        ('glmasr', 4.0)
    """
    from transformers import GlmAsrConfig, GlmAsrForConditionalGeneration, GlmAsrProcessor

    from ...hooked import HookedAudioLM

    tok = build_tokenizer()
    fe = whisper_features(window_seconds, n_mels)
    if fe.nb_max_frames % 8:
        raise ValueError(f"a GLM-ASR window needs a multiple of 8 mel frames, not {fe.nb_max_frames}")
    processor = GlmAsrProcessor(fe, tok, chat_template=CHAT_TEMPLATE, audio_token=AUDIO_TOKEN)
    audio_d = 64
    config = GlmAsrConfig(
        audio_config={
            "model_type": "glmasr_encoder",
            "num_mel_bins": fe.feature_size,
            "hidden_size": audio_d,
            # Also the width of a merged group of four frames (the projector's input).
            "intermediate_size": audio_d * 4,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": fe.nb_max_frames // 2,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "hidden_size": d_model,
            "intermediate_size": d_model * 4,
            "num_hidden_layers": n_layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        audio_token_id=tok.convert_tokens_to_ids(AUDIO_TOKEN),
    )
    hf_model = seeded(seed, GlmAsrForConditionalGeneration, set_attention(config, attn_implementation))
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
