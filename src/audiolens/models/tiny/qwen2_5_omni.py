"""Tiny random-weight Qwen2.5-Omni thinker (and the composite checkpoint around it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch

from .common import seeded
from .omni import omni_processor, omni_text_ids, omni_tokenizer, set_attn, tiny_vision

if TYPE_CHECKING:
    from transformers import Qwen2_5OmniThinkerConfig

    from ...hooked import HookedAudioLM
    from .processor import PlaceholderProcessor

AUDIO_TOKENS = ("<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>")
# The default system turn of Qwen2.5-Omni's chat template.
SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
          "perceiving auditory and visual inputs, as well as generating text and speech.")


def tiny_qwen2_5_omni_thinker_config(
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    audio_layers: int = 2,
    audio_d_model: int = 64,
    n_mels: int = 80,
    attn_implementation: str = "sdpa",
    tokenizer: Any = None,
) -> Qwen2_5OmniThinkerConfig:
    """A small ``Qwen2_5OmniThinkerConfig`` over the tiny tokenizer's vocabulary."""
    from transformers import Qwen2_5OmniThinkerConfig

    tok = tokenizer if tokenizer is not None else omni_tokenizer(AUDIO_TOKENS, SYSTEM)
    ids = omni_text_ids(tok, AUDIO_TOKENS)
    half_rotary = d_model // n_heads // 2
    section = [half_rotary - 2 * (half_rotary // 3), half_rotary // 3, half_rotary // 3]
    config = Qwen2_5OmniThinkerConfig(
        audio_config={"num_mel_bins": n_mels, "encoder_layers": audio_layers, "encoder_attention_heads": 4,
                      "encoder_ffn_dim": audio_d_model * 2, "d_model": audio_d_model, "output_dim": d_model,
                      # Features enter in chunks of 2·n_window frames, halved by the convolutions.
                      "max_source_positions": 100, "n_window": 100},
        vision_config=tiny_vision(d_model, fullatt_block_indexes=[0]),
        text_config={
            "vocab_size": ids["vocab"], "hidden_size": d_model, "intermediate_size": d_model * 4,
            "num_hidden_layers": n_layers, "num_attention_heads": n_heads,
            "num_key_value_heads": max(1, n_heads // 2), "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
            "pad_token_id": ids["pad"], "eos_token_id": ids["eos"], "tie_word_embeddings": False,
        },
        audio_token_index=ids["audio"], audio_start_token_id=ids["audio_start"],
        audio_end_token_id=ids["audio_end"], user_token_id=ids["user"],
        # Vision and video placeholders are never written by the audio template; they only
        # need to be ids inside the vocabulary.
        image_token_index=ids["vocab"] - 1, video_token_index=ids["vocab"] - 2,
        # Real thinker configs carry it; get_rope_index reads it even for audio-only input.
        vision_start_token_id=ids["vocab"] - 3,
    )
    set_attn(config, attn_implementation)
    return config


def thinker_processor(hf_thinker: torch.nn.Module, tokenizer: Any, window_seconds: int = 3) -> PlaceholderProcessor:
    """The offline processor: Whisper features padded to the window, as Qwen2.5-Omni's processor
    pads them, and as many placeholders as the thinker's audio encoder emits."""
    tower: Any = cast(Any, hf_thinker).model.audio_tower  # an HF thinker's audio encoder
    return omni_processor(
        tokenizer, AUDIO_TOKENS[1], lambda lengths: tower._get_feat_extract_output_lengths(lengths)[1],
        n_mels=tower.config.num_mel_bins, window_seconds=window_seconds, padding="max_length",
    )


def tiny_qwen2_5_omni_thinker(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> HookedAudioLM:
    """A random-weight Qwen2.5-Omni thinker wrapped as a HookedAudioLM (offline processor).

    Example:
        >>> model = tiny_qwen2_5_omni_thinker(seed=0)
        >>> model.architecture.name, model.n_layers
        ('qwen2_5_omni_thinker', 4)
    """
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from ...hooked import HookedAudioLM

    tok = omni_tokenizer(AUDIO_TOKENS, SYSTEM)
    config = tiny_qwen2_5_omni_thinker_config(
        n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation, tokenizer=tok, **overrides
    )
    hf_model = seeded(seed, Qwen2_5OmniThinkerForConditionalGeneration, config).to(device)
    return HookedAudioLM.from_hf(hf_model, thinker_processor(hf_model, tok))


def tiny_qwen2_5_omni(seed: int = 0, *, n_layers: int = 2, d_model: int = 64,
                      attn_implementation: str = "sdpa") -> tuple[torch.nn.Module, PlaceholderProcessor]:
    """A random-weight composite ``Qwen2_5OmniForConditionalGeneration`` (thinker only: the
    speech talker is not built) and its offline processor, unwrapped.

    Example:
        >>> hf_model, processor = tiny_qwen2_5_omni(seed=0)
        >>> type(hf_model.thinker).__name__
        'Qwen2_5OmniThinkerForConditionalGeneration'
    """
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    tok = omni_tokenizer(AUDIO_TOKENS, SYSTEM)
    thinker = tiny_qwen2_5_omni_thinker_config(n_layers=n_layers, d_model=d_model,
                                               attn_implementation=attn_implementation, tokenizer=tok)
    config = Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
    set_attn(config, attn_implementation)
    hf_model = seeded(seed, Qwen2_5OmniForConditionalGeneration, config)
    return hf_model, thinker_processor(hf_model.get_submodule("thinker"), tok)
