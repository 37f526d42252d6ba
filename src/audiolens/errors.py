"""Every error and warning audiolens raises, in one family.

Catch :class:`AudiolensError` for any library error and filter :class:`AudiolensWarning` for
any library warning. Each class also subclasses the builtin it stands for (``ValueError``,
``KeyError``, ``RuntimeError``, ``UserWarning``), so ``except ValueError`` keeps working. The
modules that raise them re-export them where they were first defined.

Example:
    >>> import audiolens as al
    >>> issubclass(al.errors.AudioError, (al.AudiolensError, ValueError))
    True
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path


class AudiolensError(Exception):
    """Base of every error audiolens raises on purpose."""


class AudiolensWarning(UserWarning):
    """Base of every warning audiolens emits."""


# --------------------------------------------------------------------- parameters
class ParameterError(AudiolensError, ValueError, TypeError):
    """A public parameter of the wrong type or out of range (a layer of 2.5, a window of 0, a
    NaN scale); the message names the parameter and what it accepts. It is both a
    ``ValueError`` and a ``TypeError``, so either ``except`` catches it."""


class BatchError(AudiolensError, ValueError):
    """A batch that cannot be run as it is (no rows, rows out of range, mismatched parts)."""


class PositionError(AudiolensError, KeyError, IndexError, ValueError):
    """A position or span the batch does not have: an unknown name, an index outside the
    sequence or on padding, an index tensor or mask of the wrong shape. It is a ``KeyError``,
    an ``IndexError`` and a ``ValueError``, whichever a caller catches."""

    def __str__(self) -> str:
        return str(self.args[0])


# --------------------------------------------------------------------- inputs
class AudioError(AudiolensError, ValueError):
    """A clip that cannot be used as it is (empty, NaN, infinite, unreadable, mis-scaled, too
    short or too long, unclear channel layout, bad sampling rate)."""


class AudioNote(AudiolensWarning):
    """A conversion applied to a clip (resampling, mixdown, truncation); filter it if expected."""


class LabelTokenError(AudiolensError, ValueError):
    """Labels that cannot be scored by distinct first tokens (empty, padded with spaces, not
    text, or colliding)."""


class DataError(AudiolensError, ValueError):
    """A data set that cannot be loaded as asked (missing files, unknown labels, bad layout)."""


class DataWarning(AudiolensWarning):
    """Rows were dropped because ``on_error="skip"`` (or ``on_missing``, ``on_unknown``,
    ``on_unreadable``) was asked."""


class SynthError(AudiolensError, RuntimeError):
    """espeak-ng is missing or failed."""


# --------------------------------------------------------------------- metrics
class UndefinedCriticalLayer(AudiolensWarning):
    """Every contribution was zero, so Eq. 4 has no value (NaN is returned)."""


class WeakEvidence(AudiolensWarning):
    """A number rests on too few samples, or on too little variation, to mean much."""


# --------------------------------------------------------------------- models and hooks
class ArchitectureError(AudiolensError, ValueError):
    """The wrapped model does not match its architecture description."""


class UnsupportedModelError(ArchitectureError):
    """A model this library cannot read the way the paper does (the message says why)."""


class HookUnavailable(ArchitectureError):
    """A hook point the family cannot offer exactly (asking for it would give a wrong value)."""


class UnknownHookError(AudiolensError, KeyError):
    """A hook name the wrapped model does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class HookError(AudiolensError, RuntimeError):
    """A user's hook function failed, or returned a value of the wrong shape, dtype or type, or
    edited a read-only hook point in place; the message names the hook point and what it
    expected."""


class NonFiniteWarning(AudiolensWarning):
    """NaN or infinite values appeared in a run (a residual, a tuned-lens translator's output,
    the label logits); warned once per run, naming the first site and layer. Predictions at
    such values are not meaningful."""


class TunedLensFileError(AudiolensError, ValueError):
    """Tuned-lens files that do not match each other or the model (missing or extra tensors,
    wrong shapes, non-finite values, a different depth or width)."""


class EncoderLayerError(AudiolensError, IndexError):
    """An audio-encoder layer outside ``0..model.n_encoder_layers``."""


class RemoteUnavailable(AudiolensError, RuntimeError):
    """Remote (NDIF) execution was asked for but cannot run from here."""


# --------------------------------------------------------------------- interventions, analyses
class InterventionConflict(AudiolensError, ValueError):
    """Two interventions would overwrite each other at the same hook point."""


class UnknownHeadError(AudiolensError, ValueError):
    """A head intervention names a layer or head the model does not have."""


class ReferenceMismatch(AudiolensError, ValueError):
    """A reference batch (for mean ablation) whose prompt shape differs from the batch's."""


class CounterfactualError(AudiolensError, ValueError):
    """A counterfactual audio condition that cannot be built for this data set or family
    (a swap with one label, "no audio" where the family needs audio, an unknown kind)."""


class PatchError(AudiolensError, ValueError):
    """Clean and corrupted batches that cannot be patched position by position."""


class ProbeError(AudiolensError, ValueError):
    """Probes that cannot be fitted on the data as given."""


class TooFewClips(ProbeError):
    """Fewer clips (or speaker/sentence groups) than cross-validation folds, or fewer than two
    clips of a class per fold."""


class OneClass(ProbeError):
    """Every clip has the same label: there is nothing for a probe to tell apart."""


class UngroupedFolds(AudiolensWarning):
    """The data set names no speakers or sentences, so probe folds are not grouped and clips of
    one speaker may sit on both sides of a split (held-out accuracy can be inflated)."""


# --------------------------------------------------------------------- studies
class RecordError(AudiolensError, ValueError):
    """Records that cannot be read or do not fit the study asking for them."""


class FolderBusy(RecordError):
    """Another run holds the lock on a model's records."""


class RecordWarning(AudiolensWarning):
    """Records that can be read but are incomplete: a truncated line, missing samples."""


class StepSkipped(AudiolensWarning):
    """A step of a study was skipped, and the message says why: an enrichment sweep with no
    wrong probe answer to choose ℓ̄ from, figures without matplotlib."""


class RankError(AudiolensError, RuntimeError):
    """Raised on the other ranks when a step that rank 0 runs for everyone fails there."""


# --------------------------------------------------------------------- command line
class CommandError(AudiolensError, ValueError):
    """A command-line argument that cannot be used as given (the message names it): an
    output folder that is a file, a model found neither locally nor on the hub, a count of 0."""


_PACKAGE = str(Path(__file__).resolve().parent)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside audiolens (the
    user's call), wherever inside the library it is raised (Python 3.11 has no
    ``skip_file_prefixes``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_user(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the user's line, not at a line of audiolens."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


__all__ = [
    "ArchitectureError", "AudioError", "AudioNote", "AudiolensError", "AudiolensWarning",
    "BatchError", "CommandError", "CounterfactualError", "DataError", "DataWarning",
    "EncoderLayerError", "FolderBusy", "HookError", "HookUnavailable", "InterventionConflict",
    "LabelTokenError", "NonFiniteWarning", "OneClass", "ParameterError", "PatchError",
    "PositionError", "ProbeError", "RankError", "RecordError", "RecordWarning", "ReferenceMismatch",
    "RemoteUnavailable", "StepSkipped", "SynthError", "TooFewClips", "TunedLensFileError",
    "UndefinedCriticalLayer", "UngroupedFolds", "UnknownHeadError", "UnknownHookError",
    "UnsupportedModelError", "WeakEvidence",
]
