"""Every supported audio-LLM family, one small file each, registered by HF ``model_type``.

- :mod:`~audiolens.architectures.base`: the :class:`Architecture` description, the registry and
  :class:`WrappedModel`, the protocol families type against (never the wrapper itself);
- :mod:`~audiolens.architectures.inputs`: clips and a prompt to an ``AudioBatch``
  (``prepare_batch``, the processor's default ``encode``, ``left_pad`` for families that build
  their own rows, ``render_prompt``);
- :mod:`~audiolens.architectures.templates`: chat templates; ``clipwise``, ``lora`` and
  ``remote``: what several families share (clip-by-clip encoding, speech LoRA adapters,
  checkpoints with their own code);
- one file per family (``qwen2_audio``, ``desta2``, ...).

Adding a family is adding a file that calls :func:`register` with an :class:`Architecture`,
and importing it below; :func:`whisper_tower`, :func:`causal_lm_at` and :func:`composite` give
the fields of the layouts several families share.

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.ARCHITECTURES
    True
"""

from ..errors import ArchitectureError, HookUnavailable, UnsupportedModelError
from . import (  # noqa: F401  (each registers itself)
    audioflamingo3,
    desta2,
    glmasr,
    granite_speech,
    musicflamingo,
    phi4_multimodal,
    qwen2_5_omni,
    qwen2_audio,
    qwen3_asr,
    qwen3_omni_moe,
    qwen_audio,
    refused,
    voxtral,
)
from .base import (
    ARCHITECTURES,
    DYNAMIC_CACHE,
    FRAME_STAGES,
    HUB_OPTIONS,
    UNSUPPORTED,
    Architecture,
    AudioFrames,
    AudioPath,
    AudioTower,
    DecoderPaths,
    KVCacheOps,
    WrappedModel,
    architecture_for,
    causal_lm_at,
    composite,
    config_value,
    hub_options,
    register,
    tuple_cache,
    whisper_frames,
    whisper_tower,
)

__all__ = [
    "ARCHITECTURES", "DYNAMIC_CACHE", "FRAME_STAGES", "HUB_OPTIONS", "UNSUPPORTED", "Architecture", "ArchitectureError", "AudioFrames",
    "AudioPath", "AudioTower", "DecoderPaths", "HookUnavailable", "KVCacheOps", "UnsupportedModelError", "WrappedModel", "architecture_for",
    "causal_lm_at", "composite", "config_value", "hub_options", "register", "tuple_cache", "whisper_frames", "whisper_tower",
]
