"""audiolens: look inside large audio-language models layer by layer.

Example:
    >>> import audiolens as al
    >>> model = al.models.tiny_qwen2_audio(seed=0)
    >>> task = al.sakura_task("gender")
"""

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
from .interventions import AudioMask, Enrich, HookIntervention, Intervention, InterventionConflict
from .labels import LabelTokenError, label_token_ids
from .lens import Lens, LensResult, LogitLens
from .reproduce import reproduce
from .study import Study
from .tasks import SAKURA_TASKS, Prompt, Task, sakura_task
from .tuned_lens import TunedLens

__version__ = "0.1.0"

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
