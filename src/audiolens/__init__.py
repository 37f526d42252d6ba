"""audiolens: look inside large audio-language models layer by layer.

``import audiolens`` loads nothing heavy: each name below imports its module on first use
(torch, transformers and TransformerLens come with the first model; matplotlib only with a
figure). The layers of the package, each importing only from those above it in this list:

- core: :mod:`~audiolens.errors`, ``audio``, ``tasks``, ``labels``, ``metrics``, ``batch``,
  ``files`` (no model in sight);
- :mod:`~audiolens.data`: labelled clips (SAKURA, a folder, a Hugging Face data set, espeak-ng);
- :mod:`~audiolens.architectures`: one description per audio-LLM family, and input preparation;
- :mod:`~audiolens.backends`: how hooks execute (PyTorch hooks or an nnsight trace);
- :mod:`~audiolens.hooked` (the wrapper) and :mod:`~audiolens.interventions`;
- :mod:`~audiolens.lenses`: logit, tuned and token lenses and their results;
- :mod:`~audiolens.analysis`: causal and fine-grained analyses;
- :mod:`~audiolens.models`: the shipped demo model and tiny random-weight builds;
- :mod:`~audiolens.study`: the paper's protocol over data sets, records, tables and figures;
- ``cli``.

``docs/architecture.md`` draws these layers and a lens run's data flow; ``tests/test_layers.py``
keeps every import, lazy and type-only ones included, pointing down this list.

Example:
    >>> import audiolens as al
    >>> model = al.models.tiny_qwen2_audio(seed=0)
    >>> task = al.sakura_task("gender")
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where each public name lives. `__all__` and the TYPE_CHECKING imports below say the same for
# type checkers and IDEs; tests/test_imports.py checks that the three agree.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "analysis": (
        "ProbeResult", "attention_knockout", "corrupt_clips", "direct_logit_attribution", "patch", "probe_layers",
        "run_probes",
    ),
    "analysis.attention": ("attention_to_spans",),
    "analysis.grounding": ("grounding",),
    "analysis.heads": ("find_audio_heads", "steer_heads"),
    "architectures": ("ARCHITECTURES", "Architecture"),
    "audio": ("load_audio", "prepare_waveform"),
    "batch": ("AudioBatch",),
    "errors": (
        "ArchitectureError", "AudioError", "AudioNote", "AudiolensError", "AudiolensWarning",
        "HookError", "HookUnavailable", "InterventionConflict", "LabelTokenError", "NonFiniteWarning",
        "OneClass", "ParameterError", "ProbeError", "TooFewClips", "UngroupedFolds", "UnsupportedModelError",
        "EncoderLayerError",
    ),
    "hooked": ("HookedAudioLM",),
    "interventions": ("AudioMask", "Enrich", "HeadAblation", "HeadScale", "HookIntervention", "Intervention"),
    "labels": ("label_token_ids",),
    "lenses": ("Lens", "LensResult", "LogitLens", "TokenLens", "TunedLens", "EncoderLens", "EncoderLensResult"),
    "study": ("Study", "enrich_sweep", "select_enrich_layer", "split"),
    "study.reproduce": ("reproduce",),
    "tasks": ("SAKURA_TASKS", "Prompt", "Task", "sakura_task"),
}
_SUBMODULES = (
    "analysis", "architectures", "backends", "data", "errors", "lenses", "metrics", "models", "study",
)
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}

# Modules that moved when the package took its layered shape: the old names still import, with
# a DeprecationWarning, for one release.
_MOVED = {
    "audiolens.lens": "audiolens.lenses.logit",
    "audiolens.tuned_lens": "audiolens.lenses.tuned",
    "audiolens.frames": "audiolens.lenses.frames",
    "audiolens.figures": "audiolens.study.figures",
    "audiolens.tables": "audiolens.study.tables",
    "audiolens.records": "audiolens.study.records",
    "audiolens.enrich": "audiolens.study.sweep",
    "audiolens.distributed": "audiolens.study.distributed",
    "audiolens.analysis.token_lens": "audiolens.lenses.token",
    "audiolens.backends.nnsight_trace": "audiolens.backends.nnsight",
}

__all__ = [
    "ARCHITECTURES",
    "SAKURA_TASKS",
    "Architecture",
    "ArchitectureError",
    "AudioBatch",
    "AudioError",
    "AudioMask",
    "AudioNote",
    "AudiolensError",
    "AudiolensWarning",
    "EncoderLayerError",
    "EncoderLens",
    "EncoderLensResult",
    "Enrich",
    "HookError",
    "HeadAblation",
    "HeadScale",
    "HookIntervention",
    "HookUnavailable",
    "HookedAudioLM",
    "Intervention",
    "InterventionConflict",
    "LabelTokenError",
    "Lens",
    "LensResult",
    "LogitLens",
    "NonFiniteWarning",
    "OneClass",
    "ParameterError",
    "ProbeError",
    "ProbeResult",
    "Prompt",
    "Study",
    "Task",
    "TokenLens",
    "TooFewClips",
    "TunedLens",
    "UngroupedFolds",
    "UnsupportedModelError",
    "analysis",
    "architectures",
    "attention_knockout",
    "attention_to_spans",
    "backends",
    "corrupt_clips",
    "data",
    "direct_logit_attribution",
    "enrich_sweep",
    "errors",
    "find_audio_heads",
    "grounding",
    "label_token_ids",
    "lenses",
    "load_audio",
    "metrics",
    "models",
    "patch",
    "prepare_waveform",
    "probe_layers",
    "reproduce",
    "run_probes",
    "sakura_task",
    "select_enrich_layer",
    "split",
    "steer_heads",
    "study",
]

if TYPE_CHECKING:
    from . import analysis, architectures, backends, data, errors, lenses, metrics, models, study
    from .analysis import (
        ProbeResult,
        attention_knockout,
        corrupt_clips,
        direct_logit_attribution,
        patch,
        probe_layers,
        run_probes,
    )
    from .analysis.attention import attention_to_spans
    from .analysis.grounding import grounding
    from .analysis.heads import find_audio_heads, steer_heads
    from .architectures import ARCHITECTURES, Architecture
    from .audio import load_audio, prepare_waveform
    from .batch import AudioBatch
    from .errors import (
        ArchitectureError,
        AudioError,
        AudiolensError,
        AudiolensWarning,
        AudioNote,
        EncoderLayerError,
        HookError,
        HookUnavailable,
        InterventionConflict,
        LabelTokenError,
        NonFiniteWarning,
        OneClass,
        ParameterError,
        ProbeError,
        TooFewClips,
        UngroupedFolds,
        UnsupportedModelError,
    )
    from .hooked import HookedAudioLM
    from .interventions import (
        AudioMask,
        Enrich,
        HeadAblation,
        HeadScale,
        HookIntervention,
        Intervention,
    )
    from .labels import label_token_ids
    from .lenses import (
        EncoderLens,
        EncoderLensResult,
        Lens,
        LensResult,
        LogitLens,
        TokenLens,
        TunedLens,
    )
    from .study import Study, enrich_sweep, select_enrich_layer, split
    from .study.reproduce import reproduce
    from .tasks import SAKURA_TASKS, Prompt, Task, sakura_task


def __getattr__(name: str) -> Any:
    if name in _ORIGIN:
        value = getattr(importlib.import_module(f"{__name__}.{_ORIGIN[name]}"), name)
    elif name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:  # any submodule, e.g. ``al.tuned``, as when this package imported them all
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


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module's old name as its new module, with a DeprecationWarning."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        new = _MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        # The import system returns whatever sys.modules holds under the name once this returns.
        sys.modules[module.__name__] = importlib.import_module(new)


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
