"""Tiny random-weight Qwen3-Omni thinker (mixture-of-experts decoder), and the composite
checkpoint around it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch

from .common import seeded
from .omni import omni_processor, omni_text_ids, omni_tokenizer, set_attn, tiny_vision

if TYPE_CHECKING:
    from transformers import Qwen3OmniMoeThinkerConfig

    from ...hooked import HookedAudioLM
    from .processor import PlaceholderProcessor

AUDIO_TOKENS = ("<|audio_start|>", "<|audio_pad|>", "<|audio_end|>")


def tiny_qwen3_omni_moe_thinker_config(
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    n_experts: int = 4,
    audio_layers: int = 2,
    audio_d_model: int = 64,
    n_mels: int = 80,
    attn_implementation: str = "sdpa",
    tokenizer: Any = None,
) -> Qwen3OmniMoeThinkerConfig:
    """A small ``Qwen3OmniMoeThinkerConfig`` (every layer a ``n_experts``-expert MoE, top-2)."""
    from transformers import Qwen3OmniMoeThinkerConfig

    tok = tokenizer if tokenizer is not None else omni_tokenizer(AUDIO_TOKENS, system=None)
    ids = omni_text_ids(tok, AUDIO_TOKENS)
    head_dim = d_model // n_heads
    # Interleaved sections: every third rotary frequency after the first goes to height/width.
    section = [head_dim // 2 - 2 * (head_dim // 6), head_dim // 6, head_dim // 6]
    config = Qwen3OmniMoeThinkerConfig(
        audio_config={"num_mel_bins": n_mels, "encoder_layers": audio_layers, "encoder_attention_heads": 4,
                      "encoder_ffn_dim": audio_d_model * 2, "d_model": audio_d_model, "output_dim": d_model,
                      "downsample_hidden_size": 16, "max_source_positions": 100},
        vision_config=tiny_vision(d_model, num_position_embeddings=16, deepstack_visual_indexes=[0]),
        text_config={
            "vocab_size": ids["vocab"], "hidden_size": d_model, "intermediate_size": d_model * 4,
            "moe_intermediate_size": d_model, "num_experts": n_experts, "num_experts_per_tok": 2,
            "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "head_dim": head_dim,
            "num_key_value_heads": max(1, n_heads // 2), "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section,
                                "interleaved": True, "mrope_interleaved": True},
            "pad_token_id": ids["pad"], "eos_token_id": ids["eos"],
        },
        audio_token_id=ids["audio"], audio_start_token_id=ids["audio_start"], user_token_id=ids["user"],
        image_token_id=ids["vocab"] - 1, video_token_id=ids["vocab"] - 2,
        vision_start_token_id=ids["vocab"] - 3,
    )
    set_attn(config, attn_implementation)
    return config


def thinker_processor(hf_thinker: torch.nn.Module, tokenizer: Any, window_seconds: int = 3) -> PlaceholderProcessor:
    """The offline processor: Whisper features padded to the longest clip, as Qwen3-Omni's
    processor pads them, and as many placeholders as the audio encoder's length rule gives."""
    from transformers.models.qwen3_omni_moe import modeling_qwen3_omni_moe as modeling

    audio: Any = cast(Any, hf_thinker).config.audio_config  # an HF thinker: its config is not nn.Module's
    return omni_processor(
        tokenizer, AUDIO_TOKENS[1],
        lambda lengths: modeling._get_feat_extract_output_lengths(lengths, audio.n_window),
        n_mels=audio.num_mel_bins, window_seconds=window_seconds, padding=True,
    )


def tiny_qwen3_omni_moe_thinker(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    **overrides: Any,
) -> HookedAudioLM:
    """A random-weight Qwen3-Omni thinker wrapped as a HookedAudioLM (offline processor).

    Example:
        >>> model = tiny_qwen3_omni_moe_thinker(seed=0)
        >>> model.architecture.name, model.n_layers
        ('qwen3_omni_moe_thinker', 4)
    """
    from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

    from ...hooked import HookedAudioLM

    tok = omni_tokenizer(AUDIO_TOKENS, system=None)
    config = tiny_qwen3_omni_moe_thinker_config(
        n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation, tokenizer=tok, **overrides
    )
    hf_model = seeded(seed, Qwen3OmniMoeThinkerForConditionalGeneration, config).to(device)
    return HookedAudioLM.from_hf(hf_model, thinker_processor(hf_model, tok))


def tiny_qwen3_omni_moe(seed: int = 0, *, n_layers: int = 2, d_model: int = 64,
                        attn_implementation: str = "sdpa") -> tuple[torch.nn.Module, PlaceholderProcessor]:
    """A random-weight composite ``Qwen3OmniMoeForConditionalGeneration`` (thinker only: the
    speech talker is not built) and its offline processor, unwrapped.

    Example:
        >>> hf_model, processor = tiny_qwen3_omni_moe(seed=0)
        >>> type(hf_model.thinker).__name__
        'Qwen3OmniMoeThinkerForConditionalGeneration'
    """
    from transformers import Qwen3OmniMoeConfig, Qwen3OmniMoeForConditionalGeneration

    tok = omni_tokenizer(AUDIO_TOKENS, system=None)
    thinker = tiny_qwen3_omni_moe_thinker_config(n_layers=n_layers, d_model=d_model,
                                                 attn_implementation=attn_implementation, tokenizer=tok)
    config = Qwen3OmniMoeConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
    set_attn(config, attn_implementation)
    hf_model = seeded(seed, Qwen3OmniMoeForConditionalGeneration, config)
    return hf_model, thinker_processor(hf_model.get_submodule("thinker"), tok)
