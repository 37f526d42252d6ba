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

from .base import Architecture, composite, register, whisper_tower

QWEN2_5_OMNI_THINKER = register(Architecture(
    name="qwen2_5_omni_thinker",
    hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
    audio_token="<|AUDIO|>",
    # The tower runs every clip's frames packed on one axis and projects inside itself.
    **whisper_tower(pool=2, feature_mask="feature_attention_mask", norm="ln_post", output="ln_post",
                    projector="model.audio_tower.proj", packed=True),
))

QWEN2_5_OMNI = register(composite(QWEN2_5_OMNI_THINKER, "qwen2_5_omni"))
