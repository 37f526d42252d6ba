"""Every supported audio-LLM family, one small file each, registered by HF ``model_type``.

Adding a family is adding a file that calls :func:`register` with an :class:`Architecture`,
and importing it below.

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.ARCHITECTURES
    True
"""

from . import (  # noqa: F401  (each registers itself)
    granite_speech,
    phi4_multimodal,
    qwen2_5_omni,
    qwen2_audio,
    qwen3_omni_moe,
    refused,
    voxtral,
)
from .base import (
    ARCHITECTURES,
    DYNAMIC_CACHE,
    UNSUPPORTED,
    Architecture,
    ArchitectureError,
    HookUnavailable,
    KVCacheOps,
    UnsupportedModelError,
    architecture_for,
    config_value,
    register,
)

__all__ = [
    "ARCHITECTURES", "DYNAMIC_CACHE", "UNSUPPORTED", "Architecture", "ArchitectureError",
    "HookUnavailable", "KVCacheOps", "UnsupportedModelError", "architecture_for", "config_value",
    "register",
]
