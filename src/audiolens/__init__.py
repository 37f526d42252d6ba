"""audiolens: look inside large audio-language models layer by layer.

``import audiolens`` loads nothing heavy: each name below imports its module on first use
(torch, transformers and TransformerLens come with the first model; matplotlib only with a
figure).

Example:
    >>> import audiolens as al
    >>> model = al.models.tiny_qwen2_audio(seed=0)
    >>> task = al.sakura_task("gender")
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where each public name lives. `__all__` and the TYPE_CHECKING imports below say the same for
# type checkers and IDEs; tests/test_imports.py checks that the three agree.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "analysis": (
        "TokenLens", "attention_knockout", "corrupt_clips", "direct_logit_attribution", "patch",
    ),
    "architectures": (
        "ARCHITECTURES", "Architecture", "ArchitectureError", "HookUnavailable",
        "UnsupportedModelError",
    ),
    "audio": ("AudioError", "AudioNote", "load_audio", "prepare_waveform"),
    "batch": ("AudioBatch",),
    "enrich": ("enrich_sweep", "select_enrich_layer", "split"),
    "hooked": ("HookedAudioLM",),
    "interventions": (
        "AudioMask", "Enrich", "HookIntervention", "Intervention", "InterventionConflict",
    ),
    "labels": ("LabelTokenError", "label_token_ids"),
    "lens": ("Lens", "LensResult", "LogitLens"),
    "reproduce": ("reproduce",),
    "study": ("Study",),
    "tasks": ("SAKURA_TASKS", "Prompt", "Task", "sakura_task"),
    "tuned_lens": ("TunedLens",),
}
_SUBMODULES = ("analysis", "data", "metrics", "models")
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ARCHITECTURES",
    "SAKURA_TASKS",
    "Architecture",
    "ArchitectureError",
    "AudioBatch",
    "AudioError",
    "AudioMask",
    "AudioNote",
    "Enrich",
    "HookIntervention",
    "HookUnavailable",
    "HookedAudioLM",
    "Intervention",
    "InterventionConflict",
    "LabelTokenError",
    "Lens",
    "LensResult",
    "LogitLens",
    "Prompt",
    "Study",
    "Task",
    "TokenLens",
    "TunedLens",
    "UnsupportedModelError",
    "analysis",
    "attention_knockout",
    "corrupt_clips",
    "data",
    "direct_logit_attribution",
    "enrich_sweep",
    "label_token_ids",
    "load_audio",
    "metrics",
    "models",
    "patch",
    "prepare_waveform",
    "reproduce",
    "sakura_task",
    "select_enrich_layer",
    "split",
]

if TYPE_CHECKING:
    from . import analysis, data, metrics, models
    from .analysis import (
        TokenLens,
        attention_knockout,
        corrupt_clips,
        direct_logit_attribution,
        patch,
    )
    from .architectures import (
        ARCHITECTURES,
        Architecture,
        ArchitectureError,
        HookUnavailable,
        UnsupportedModelError,
    )
    from .audio import AudioError, AudioNote, load_audio, prepare_waveform
    from .batch import AudioBatch
    from .enrich import enrich_sweep, select_enrich_layer, split
    from .hooked import HookedAudioLM
    from .interventions import (
        AudioMask,
        Enrich,
        HookIntervention,
        Intervention,
        InterventionConflict,
    )
    from .labels import LabelTokenError, label_token_ids
    from .lens import Lens, LensResult, LogitLens
    from .reproduce import reproduce
    from .study import Study
    from .tasks import SAKURA_TASKS, Prompt, Task, sakura_task
    from .tuned_lens import TunedLens


def __getattr__(name: str) -> Any:
    if name in _ORIGIN:
        value = getattr(importlib.import_module(f"{__name__}.{_ORIGIN[name]}"), name)
    elif name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:  # any submodule, e.g. ``al.tables``, as when this package imported them all
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but needs a package that is not installed
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Importing a submodule sets it as an attribute of its package. Where a public name is
    also a submodule's name (``reproduce``), the public object must win, as it did when this
    package imported everything eagerly: skip the assignment and let ``__getattr__`` load it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not (isinstance(value, types.ModuleType) and name in _ORIGIN):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
