"""Qwen2.5-Omni: the thinker (``qwen2_5_omni_thinker``: Whisper-style encoder, Qwen2 decoder,
25 audio tokens per second) and the composite hub checkpoints around it (``qwen2_5_omni``).

The decoder rotates with 3-D (time, height, width) positions. For audio and text alone the three
are equal, and ``prepare`` passes explicit 2-D position ids, which the decoder broadcasts to all
three: the same rotation the model's own ``get_rope_index`` gives.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from .base import Architecture, register

QWEN2_5_OMNI_THINKER = register(Architecture(
    name="qwen2_5_omni_thinker",
    hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
    audio_token="<|AUDIO|>",
    tokens_per_second=25.0,
))


def load_without_talker(name_or_path: str, **kwargs: Any) -> tuple[nn.Module, Any]:
    """The composite checkpoint with its speech talker never built (``enable_audio_output=False``:
    the talker and vocoder weights are skipped), and the checkpoint's own processor."""
    from transformers import AutoProcessor, Qwen2_5OmniForConditionalGeneration

    model = Qwen2_5OmniForConditionalGeneration.from_pretrained(name_or_path, enable_audio_output=False, **kwargs)
    shared = {k: v for k, v in kwargs.items() if k in ("revision", "token", "cache_dir", "local_files_only")}
    return model, AutoProcessor.from_pretrained(name_or_path, **shared)


# Paths are the thinker's, relative to the submodel.
QWEN2_5_OMNI = register(replace(
    QWEN2_5_OMNI_THINKER,
    name="qwen2_5_omni",
    hf_class="Qwen2_5OmniForConditionalGeneration",
    submodel="thinker",
    load=load_without_talker,
))
