"""Every supported audio-LLM family, one small file each, registered by HF ``model_type``.

Adding a family is adding a file that calls :func:`register` with an :class:`Architecture`,
and importing it below.

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.ARCHITECTURES
    True
"""

from . import desta2, qwen2_audio, qwen_audio, refused  # noqa: F401  (each registers itself)
from .base import (
    ARCHITECTURES,
    DYNAMIC_CACHE,
    HUB_OPTIONS,
    UNSUPPORTED,
    Architecture,
    ArchitectureError,
    HookUnavailable,
    KVCacheOps,
    UnsupportedModelError,
    architecture_for,
    config_value,
    register,
    tuple_cache,
)

__all__ = [
    "ARCHITECTURES", "DYNAMIC_CACHE", "HUB_OPTIONS", "UNSUPPORTED", "Architecture", "ArchitectureError",
    "HookUnavailable", "KVCacheOps", "UnsupportedModelError", "architecture_for", "config_value",
    "register", "tuple_cache",
]
