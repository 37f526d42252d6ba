"""Qwen2.5-Omni: the thinker (``qwen2_5_omni_thinker``: Whisper-style encoder, Qwen2 decoder,
25 audio tokens per second) and the composite hub checkpoints around it (``qwen2_5_omni``).

The decoder rotates with 3-D (time, height, width) positions. For audio and text alone the three
are equal, and ``prepare`` passes explicit 2-D position ids, which the decoder broadcasts to all
three: the same rotation the model's own ``get_rope_index`` gives.
"""

from __future__ import annotations

from dataclasses import replace

from .base import PACKED_ENCODER, Architecture, register

QWEN2_5_OMNI_THINKER = register(Architecture(
    name="qwen2_5_omni_thinker",
    hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
    audio_token="<|AUDIO|>",
    tokens_per_second=25.0,
    encoder_unavailable=PACKED_ENCODER,
))

# A composite checkpoint loads through the thinker class, which reads the thinker's weights
# alone: the speech talker and vocoder are never built. ``submodel`` wraps the thinker of a
# composite model already in memory. Paths are the thinker's, relative to the submodel.
QWEN2_5_OMNI = register(replace(
    QWEN2_5_OMNI_THINKER,
    name="qwen2_5_omni",
    hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
    submodel="thinker",
))
