"""Tiny random-weight builds of every supported family, offline, for tests and demos.

``tiny(family, seed=0, **overrides)`` builds a family's model from a small config with random
weights and a processor that needs no network (a tokenizer trained in milliseconds, the family's
own feature extractor or an equivalent built from its length rule). Each saves with
``save_pretrained`` and loads back with ``HookedAudioLM.from_pretrained``. The two remote-code
families (``qwen``: Qwen-Audio-Chat, ``DestaModel``: DeSTA2) are built as checkpoint folders of
structural doubles of their published code and loaded with ``trust_remote_code=True``
(:mod:`audiolens.models.tiny.remote`).

``family`` is a ``model_type`` (``"qwen2_audio"``), a hub composite's ``model_type``
(``"qwen2_5_omni"`` builds the thinker, the part audiolens reads), or the family's name
(``"Qwen2.5-Omni"``, ``"DeSTA2"``).

Example:
    >>> import audiolens as al
    >>> "qwen2_audio" in al.models.families()
    True
    >>> al.models.tiny("qwen2_audio", seed=0).n_layers
    4
    >>> al.models.tiny("Qwen2.5-Omni").architecture.name
    'qwen2_5_omni_thinker'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...architectures.names import FAMILY_TITLES, canonical_name
from .audioflamingo3 import tiny_audioflamingo3
from .common import default_corpus, train_tokenizer
from .glmasr import tiny_glmasr
from .granite_speech import tiny_granite_speech
from .musicflamingo import tiny_musicflamingo
from .phi4_multimodal import tiny_phi4_multimodal
from .qwen2_5_omni import tiny_qwen2_5_omni_thinker
from .qwen2_audio import build_processor, build_tokenizer, tiny_qwen2_audio
from .qwen3_asr import tiny_qwen3_asr
from .qwen3_omni_moe import tiny_qwen3_omni_moe_thinker
from .remote import tiny_desta2, tiny_qwen_audio
from .voxtral import tiny_voxtral

if TYPE_CHECKING:
    from ...hooked import HookedAudioLM

#: family name (HF model_type) -> builder(seed=..., **overrides)
BUILDERS: dict[str, Callable[..., HookedAudioLM]] = {
    "DestaModel": tiny_desta2,
    "audioflamingo3": tiny_audioflamingo3,
    "glmasr": tiny_glmasr,
    "granite_speech": tiny_granite_speech,
    "musicflamingo": tiny_musicflamingo,
    "phi4_multimodal": tiny_phi4_multimodal,
    "qwen": tiny_qwen_audio,
    "qwen2_5_omni_thinker": tiny_qwen2_5_omni_thinker,
    "qwen2_audio": tiny_qwen2_audio,
    "qwen3_asr": tiny_qwen3_asr,
    "qwen3_omni_moe_thinker": tiny_qwen3_omni_moe_thinker,
    "voxtral": tiny_voxtral,
}

#: hub composites (what their checkpoints' config.json says) -> the part audiolens reads
COMPOSITES = {"qwen2_5_omni": "qwen2_5_omni_thinker", "qwen3_omni_moe": "qwen3_omni_moe_thinker"}


def families() -> list[str]:
    """Names of the families that :func:`tiny` can build (HF ``model_type`` values)."""
    return sorted(BUILDERS)


def _lookup() -> dict[str, str]:
    """Every accepted spelling, folded by ``canonical_name``, -> a ``BUILDERS`` key."""
    names = {canonical_name(n): n for n in BUILDERS}
    names |= {canonical_name(n): part for n, part in COMPOSITES.items()}
    for model_type, title in FAMILY_TITLES.items():
        target = COMPOSITES.get(model_type, model_type)
        if target in BUILDERS:
            names.setdefault(canonical_name(title), target)
    return names


def tiny(family: str, seed: int = 0, **overrides: Any) -> HookedAudioLM:
    """A random-weight ``family`` model, deterministic for ``seed``; ``overrides`` go to its
    builder (e.g. ``n_layers``, ``d_model``, ``attn_implementation``). ``family`` is a
    ``model_type``, a composite's ``model_type`` or the family's name (see the module doc)."""
    build = BUILDERS.get(_lookup().get(canonical_name(family), ""))
    if build is None:
        titles = sorted({FAMILY_TITLES.get(n, n) for n in BUILDERS})
        raise ValueError(f"no tiny build for family {family!r}: give a model_type ({', '.join(families())}) "
                         f"or a family name ({', '.join(titles)})")
    return build(seed=seed, **overrides)


__all__ = [
    "BUILDERS",
    "COMPOSITES",
    "build_processor",
    "build_tokenizer",
    "default_corpus",
    "families",
    "tiny",
    "tiny_audioflamingo3",
    "tiny_desta2",
    "tiny_glmasr",
    "tiny_granite_speech",
    "tiny_musicflamingo",
    "tiny_phi4_multimodal",
    "tiny_qwen2_5_omni_thinker",
    "tiny_qwen2_audio",
    "tiny_qwen3_asr",
    "tiny_qwen3_omni_moe_thinker",
    "tiny_qwen_audio",
    "tiny_voxtral",
    "train_tokenizer"
]
