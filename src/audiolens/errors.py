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


class AudiolensError(Exception):
    """Base of every error audiolens raises on purpose."""


class AudiolensWarning(UserWarning):
    """Base of every warning audiolens emits."""


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


__all__ = [
    "ArchitectureError", "AudioError", "AudioNote", "AudiolensError", "AudiolensWarning",
    "CommandError", "CounterfactualError", "DataError", "DataWarning", "FolderBusy",
    "HookUnavailable", "InterventionConflict", "LabelTokenError", "PatchError", "RankError",
    "RecordError", "RecordWarning", "ReferenceMismatch", "RemoteUnavailable", "StepSkipped",
    "SynthError", "UndefinedCriticalLayer", "UnknownHeadError", "UnknownHookError",
    "UnsupportedModelError", "WeakEvidence"
]
