"""Every supported audio-LLM family, one small file each, registered by HF ``model_type``.

Adding a family is adding a file that calls :func:`register` with an :class:`Architecture`,
and importing it below.

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.ARCHITECTURES
    True
"""

from . import qwen2_audio, refused  # noqa: F401  (each registers itself)
from . import audioflamingo3  # noqa: F401
from . import glmasr  # noqa: F401
from . import musicflamingo  # noqa: F401
from . import qwen3_asr  # noqa: F401
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
