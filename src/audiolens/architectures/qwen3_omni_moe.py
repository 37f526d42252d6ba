"""Qwen3-Omni: the thinker (``qwen3_omni_moe_thinker``: chunked audio encoder at 13 tokens per
second, mixture-of-experts decoder) and the composite hub checkpoints (``qwen3_omni_moe``).

Each decoder block adds attention and the expert mixture to the residual stream as a plain
decoder does, so the mid residual is exact. Rotary positions are interleaved 3-D (time, height,
width); for audio and text alone the three are equal, which the explicit 2-D position ids of
``prepare`` give.
"""

from __future__ import annotations

from .base import PACKED_ENCODER, Architecture, composite, register

QWEN3_OMNI_MOE_THINKER = register(Architecture(
    name="qwen3_omni_moe_thinker",
    hf_class="Qwen3OmniMoeThinkerForConditionalGeneration",
    audio_token="<|audio_pad|>",
    tokens_per_second=13.0,  # 13 per 100-frame (1 s) encoder chunk
    encoder_unavailable=PACKED_ENCODER,
))

QWEN3_OMNI_MOE = register(composite(QWEN3_OMNI_MOE_THINKER, "qwen3_omni_moe"))
