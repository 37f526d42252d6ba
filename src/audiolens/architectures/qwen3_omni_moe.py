"""Qwen3-Omni: the thinker (``qwen3_omni_moe_thinker``: chunked audio encoder at 13 tokens per
second, mixture-of-experts decoder) and the composite hub checkpoints (``qwen3_omni_moe``).

Each decoder block adds attention and the expert mixture to the residual stream as a plain
decoder does, so the mid residual is exact. Rotary positions are interleaved 3-D (time, height,
width); for audio and text alone the three are equal, which the explicit 2-D position ids of
``prepare`` give.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from .base import Architecture, register

QWEN3_OMNI_MOE_THINKER = register(Architecture(
    name="qwen3_omni_moe_thinker",
    hf_class="Qwen3OmniMoeThinkerForConditionalGeneration",
    audio_token="<|audio_pad|>",
    tokens_per_second=12.5,
))


def load_without_talker(name_or_path: str, **kwargs: Any) -> tuple[nn.Module, Any]:
    """The composite checkpoint with its speech talker never built (``enable_audio_output=False``),
    and the checkpoint's own processor."""
    from transformers import AutoProcessor, Qwen3OmniMoeForConditionalGeneration

    model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(name_or_path, enable_audio_output=False, **kwargs)
    shared = {k: v for k, v in kwargs.items() if k in ("revision", "token", "cache_dir", "local_files_only")}
    return model, AutoProcessor.from_pretrained(name_or_path, **shared)


# Paths are the thinker's, relative to the submodel.
QWEN3_OMNI_MOE = register(replace(
    QWEN3_OMNI_MOE_THINKER,
    name="qwen3_omni_moe",
    hf_class="Qwen3OmniMoeForConditionalGeneration",
    submodel="thinker",
    load=load_without_talker,
))
