"""Tiny random-weight Voxtral with an offline stand-in for its processor.

Voxtral's processor tokenizes through mistral-common (a ``tekken`` tokenizer) and takes audio
only inside ``apply_chat_template``. The tiny build instead pairs a trained BPE holding Voxtral's
control tokens with a chat template of Voxtral's instruct layout
(``<s>[INST][BEGIN_AUDIO][AUDIO]…question[/INST]answer``) and Whisper features cut to one encoder
window (the family's fixed chunk, shrunk from 30 s to ``window_seconds``). Every clip fills one
window, so every clip gets the same number of ``[AUDIO]`` tokens: the encoder's output positions
per window, merged by the projector (``hidden_size / intermediate_size``), as in the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .common import seeded, train_tokenizer
from .processor import PlaceholderProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...hooked import HookedAudioLM

AUDIO_TOKEN = "[AUDIO]"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "[INST]", "[/INST]", AUDIO_TOKEN, "[BEGIN_AUDIO]")

# Voxtral's instruct layout (mistral-common): no default system turn, the assistant's text
# follows [/INST] directly, audio chunks open with [BEGIN_AUDIO].
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST]"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}[BEGIN_AUDIO][AUDIO]"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}[/INST]"
    "{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE with Voxtral's control tokens and instruct layout."""
    tok = train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, corpus=corpus, vocab_size=vocab_size,
                          eos_token="</s>", pad_token="<pad>")
    tok.bos_token = "<s>"
    return tok


def tiny_audio_config(window_seconds: int = 4, d_model: int = 64) -> dict:
    """The audio encoder of the tiny build: one window of ``window_seconds`` (100 mel frames a
    second, halved by the encoder's strided convolution), four frames merged per token."""
    return {
        "model_type": "voxtral_encoder", "num_mel_bins": 128, "hidden_size": d_model,
        "intermediate_size": 4 * d_model, "num_hidden_layers": 2, "num_attention_heads": 4,
        "max_source_positions": window_seconds * 100 // 2, "vocab_size": 32,
    }


def build_processor(
    audio_config: dict | None = None, tokenizer: PreTrainedTokenizerBase | None = None
) -> PlaceholderProcessor:
    """Whisper features of one encoder window per clip and ``[AUDIO]`` × the window's tokens."""
    from transformers import WhisperFeatureExtractor

    audio_config = audio_config or tiny_audio_config()
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    frames = 2 * audio_config["max_source_positions"]  # mel frames the encoder takes per window
    fe = WhisperFeatureExtractor(feature_size=audio_config["num_mel_bins"], sampling_rate=16000,
                                 hop_length=160, chunk_length=frames // 100)
    tokens_per_window = (audio_config["max_source_positions"] * audio_config["hidden_size"]
                         // audio_config["intermediate_size"])

    def features(waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        out = fe(list(waves), sampling_rate=fe.sampling_rate, return_tensors="pt")
        return {"input_features": out["input_features"]}

    return PlaceholderProcessor(
        tokenizer, fe, AUDIO_TOKEN, features,
        n_audio_tokens=lambda feats: [tokens_per_window] * feats["input_features"].shape[0],
    )


def tiny_voxtral(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    window_seconds: int = 4,
) -> HookedAudioLM:
    """A random-weight Voxtral wrapped as a HookedAudioLM (one ``window_seconds`` audio window).

    Example:
        >>> model = tiny_voxtral(seed=0)
        >>> model.n_layers, model.max_audio_seconds
        (4, 4.0)
    """
    from transformers import VoxtralConfig, VoxtralForConditionalGeneration

    from ...hooked import HookedAudioLM

    audio_config = tiny_audio_config(window_seconds)
    processor = build_processor(audio_config)
    tok = processor.tokenizer
    config = VoxtralConfig(
        audio_config=audio_config,
        text_config={
            "model_type": "llama", "vocab_size": len(tok), "hidden_size": d_model,
            "intermediate_size": d_model * 2, "num_hidden_layers": n_layers, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": d_model // 4, "max_position_embeddings": 1024,
            "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "tie_word_embeddings": False,
        },
        audio_token_id=tok.convert_tokens_to_ids(AUDIO_TOKEN),
    )
    for cfg in (config, config.text_config, config.audio_config):
        cfg._attn_implementation = attn_implementation
    hf_model = seeded(seed, VoxtralForConditionalGeneration, config)
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
