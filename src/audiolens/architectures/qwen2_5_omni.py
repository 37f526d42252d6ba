"""Qwen2.5-Omni: the thinker (``qwen2_5_omni_thinker``: Whisper-style encoder, Qwen2 decoder,
25 audio tokens per second) and the composite hub checkpoints around it (``qwen2_5_omni``).

The decoder rotates with 3-D (time, height, width) positions. For audio and text alone the three
are equal, and ``prepare`` passes explicit 2-D position ids, which the decoder broadcasts to all
three: the same rotation the model's own ``get_rope_index`` gives.

The audio tower runs every clip's frames packed on one axis (attention bounded per chunk) and
projects inside itself: ``encoder.hook_out`` is its ``ln_post`` output, ``projector.hook_out`` its
``proj`` output; the hooks show the packed frames per row.
"""

from __future__ import annotations

from dataclasses import replace

from .base import Architecture, register, whisper_frames

QWEN2_5_OMNI_THINKER = register(Architecture(
    name="qwen2_5_omni_thinker",
    hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
    audio_token="<|AUDIO|>",
    tokens_per_second=25.0,
    # The tower runs every clip's frames packed on one axis and projects inside itself.
    audio_encoder="model.audio_tower",
    encoder_layers="model.audio_tower.layers",
    encoder_final_norm="model.audio_tower.ln_post",
    encoder_pooling="model.audio_tower.avg_pooler",
    encoder_output="model.audio_tower.ln_post",
    projector="model.audio_tower.proj",
    encoder_packed=True,
    audio_frames=whisper_frames(pool=2, feature_mask="feature_attention_mask"),
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
