"""Tiny random-weight builds of every supported native family, offline, for tests and demos.

``tiny(family, seed=0, **overrides)`` builds a family's model from a small config with random
weights and a processor that needs no network (a tokenizer trained in milliseconds, the family's
own feature extractor or an equivalent built from its length rule). Each saves with
``save_pretrained`` and loads back with ``HookedAudioLM.from_pretrained``.

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.models.families()
    True
    >>> al.models.tiny("qwen2_audio", seed=0).n_layers
    4
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .common import default_corpus, train_tokenizer
from .granite_speech import tiny_granite_speech
from .phi4_multimodal import tiny_phi4_multimodal
from .qwen2_5_omni import tiny_qwen2_5_omni_thinker
from .qwen2_audio import build_processor, build_tokenizer, tiny_qwen2_audio
from .qwen3_omni_moe import tiny_qwen3_omni_moe_thinker
from .voxtral import tiny_voxtral

if TYPE_CHECKING:
    from ...hooked import HookedAudioLM

#: family name (HF model_type) -> builder(seed=..., **overrides)
BUILDERS: dict[str, Callable[..., HookedAudioLM]] = {
    "granite_speech": tiny_granite_speech,
    "phi4_multimodal": tiny_phi4_multimodal,
    "qwen2_5_omni_thinker": tiny_qwen2_5_omni_thinker,
    "qwen2_audio": tiny_qwen2_audio,
    "qwen3_omni_moe_thinker": tiny_qwen3_omni_moe_thinker,
    "voxtral": tiny_voxtral,
}


def families() -> list[str]:
    """Names of the families that :func:`tiny` can build (HF ``model_type`` values)."""
    return sorted(BUILDERS)


def tiny(family: str, seed: int = 0, **overrides: Any) -> HookedAudioLM:
    """A random-weight ``family`` model, deterministic for ``seed``; ``overrides`` go to its
    builder (e.g. ``n_layers``, ``d_model``, ``attn_implementation``)."""
    try:
        build = BUILDERS[family]
    except KeyError:
        raise ValueError(f"no tiny build for family {family!r}; known: {families()}") from None
    return build(seed=seed, **overrides)


__all__ = ["BUILDERS", "build_processor", "build_tokenizer", "default_corpus", "families", "tiny",
           "tiny_granite_speech", "tiny_phi4_multimodal", "tiny_qwen2_5_omni_thinker", "tiny_qwen2_audio",
           "tiny_qwen3_omni_moe_thinker", "tiny_voxtral", "train_tokenizer"]
