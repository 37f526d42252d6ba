"""``LabelLens``: what the label lenses share: which labels they score and at which positions,
the checks of both against a batch, one run's steps and the :class:`LensResult` it fills.

A label lens (:class:`~audiolens.lenses.logit.LogitLens`,
:class:`~audiolens.lenses.encoder.EncoderLens`) says only how it reads the label logits
(``_read``); :meth:`LabelLens.run` checks the labels, finds the asked positions and collects
the interventions' hooks for it.

Example:
    >>> from audiolens.lenses import EncoderLens, LogitLens
    >>> LogitLens(["male", "female"], positions="last").positions
    ('last',)
    >>> isinstance(EncoderLens(), LabelLens)
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import torch
from torch import Tensor

from ..batch import AudioBatch, position_index
from ..errors import ParameterError
from ..interventions import HookFn, Intervention, collect_hooks
from ..labels import LabelTokens, check_labels, label_token_ids
from ..tasks import Task
from .result import LensResult

if TYPE_CHECKING:
    from ..hooked import HookedAudioLM

R = TypeVar("R")  # what a lens's run returns


@dataclass(frozen=True)
class Asked:
    """What one run scores: the labels, their token ids, and each row's asked positions
    (``(batch, positions)``, -1 where a row lacks one)."""

    labels: tuple[str, ...]
    token_ids: list[int]
    index: Tensor


@dataclass
class LabelLens(ABC, Generic[R]):
    """A lens that scores the task's labels (their first tokens) at named positions.

    Args:
        labels: a :class:`Task` or the label words (None: the batch's label set).
        label_tokens: ``"leading_space"`` (the word as it follows "is", the default) or
            ``"bare"`` (the word alone, as in the authors' code).
        positions: which token positions to read (names or ints).
    """

    labels: Task | Sequence[str] | None = None
    label_tokens: LabelTokens = "leading_space"
    positions: tuple[str | int, ...] = ("last",)

    def __post_init__(self) -> None:
        if isinstance(self.labels, Task):
            self.labels = self.labels.labels
        if self.labels is not None:
            self.labels = check_labels(self.labels)
            if len(self.labels) < 2:
                raise ParameterError(f"a lens needs at least two labels, got {self.labels}")
        if self.label_tokens not in ("leading_space", "bare"):
            raise ParameterError(f"label_tokens must be 'leading_space' or 'bare', got {self.label_tokens!r}")
        positions = self.positions
        self.positions = (positions,) if isinstance(positions, (str, int)) else tuple(positions)
        if not self.positions or any(isinstance(p, bool) or not isinstance(p, (str, int)) for p in self.positions):
            raise ParameterError(f"positions must be position names or token indices, got {positions!r}")

    @torch.no_grad()
    def run(
        self,
        model: HookedAudioLM,
        batch: AudioBatch,
        interventions: Sequence[Intervention] = (),
        *,
        backend: str = "hooks",
        remote: bool = False,
    ) -> R:
        """Label logits at every asked position, with ``interventions`` applied to the run.

        ``backend="nnsight"`` runs the same hooks inside an nnsight trace (``remote=True``:
        on NDIF); see :mod:`audiolens.backends`.
        """
        asked = self._ask(model, batch)
        # Interventions go first so that the lens reads the edited activations.
        edits = collect_hooks(interventions, model, batch)
        return self._read(model, batch, asked, edits, backend=backend, remote=remote)

    @abstractmethod
    def _read(self, model: HookedAudioLM, batch: AudioBatch, asked: Asked, edits: list[tuple[str, HookFn]],
              *, backend: str, remote: bool) -> R:
        """Run ``batch`` with the interventions' ``edits`` and read the ``asked`` label logits."""

    def _ask(self, model: HookedAudioLM, batch: AudioBatch) -> Asked:
        """The labels to score (the lens's, else the batch's), their token ids and the asked
        positions of ``batch``."""
        if not isinstance(batch, AudioBatch):
            raise ParameterError(f"batch must be an AudioBatch (from model.prepare), got {type(batch).__name__}; "
                                 "the order is run(model, batch)")
        labels = self.labels if self.labels is not None else batch.label_set
        if labels is None:
            raise ParameterError("no labels: give the lens labels or prepare the batch with a task prompt")
        assert not isinstance(labels, Task)  # __post_init__ replaced a Task by its labels
        labels = tuple(labels)
        if batch.label_set is not None and tuple(batch.label_set) != labels:
            raise ParameterError(
                f"the batch's labels {list(batch.label_set)} differ from the lens's {list(labels)}"
            )
        token_ids = label_token_ids(model.tokenizer, labels, self.label_tokens)
        return Asked(labels, token_ids, position_index(batch, list(self.positions)))

    def _lens_result(self, batch: AudioBatch, asked: Asked, label_logits: Tensor,
                     label_probs: Tensor | None = None) -> LensResult:
        """The label logits ``(layers, batch, positions, labels)`` of ``batch`` as a result."""
        return LensResult(
            label_logits=label_logits.float().cpu(),
            label_probs=None if label_probs is None else label_probs.cpu(),
            targets=None if batch.targets is None else batch.targets.cpu(),
            labels=asked.labels,
            positions=tuple(str(p) for p in self.positions),
            label_token_ids=tuple(asked.token_ids),
            ids=list(batch.ids),
        )
