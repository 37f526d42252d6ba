"""Every supported audio-LLM family, one small file each, registered by HF ``model_type``.

Adding a family is adding a file that calls :func:`register` with an :class:`Architecture`,
and importing it below.

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
    KVCacheOps,
    WrappedModel,
    architecture_for,
    config_value,
    hub_options,
    register,
    tuple_cache,
    whisper_frames,
)

__all__ = [
    "ARCHITECTURES", "DYNAMIC_CACHE", "FRAME_STAGES", "HUB_OPTIONS", "UNSUPPORTED", "Architecture", "ArchitectureError", "AudioFrames",
    "HookUnavailable", "KVCacheOps", "UnsupportedModelError", "WrappedModel", "architecture_for", "config_value", "hub_options",
    "register", "tuple_cache", "whisper_frames",
]
