"""Small pieces the analyses share: label ids of a task and the label-logit gap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..errors import ParameterError
from ..labels import LabelTokens, label_token_ids
from ..tasks import Task

if TYPE_CHECKING:
    from ..batch import AudioBatch
    from ..hooked import HookedAudioLM


def label_names(labels: Task | Sequence[str], batch: AudioBatch | None = None) -> tuple[str, ...]:
    """The label words of a task or list; with ``batch``, they must be the batch's label set
    (its targets index into that set, so any other set would score the wrong labels)."""
    if isinstance(labels, str) or not isinstance(labels, (Task, Sequence)):
        raise ParameterError(f"labels must be a Task or a list of label words, got {labels!r:.80}")
    names = tuple(labels.labels if isinstance(labels, Task) else labels)
    if batch is not None and batch.label_set is not None and tuple(batch.label_set) != names:
        raise ParameterError(
            f"the batch's labels {list(batch.label_set)} differ from the analysis's {list(names)}: "
            "give the task the batch was prepared with"
        )
    return names


def label_ids(
    model: HookedAudioLM, labels: Task | Sequence[str], mode: LabelTokens = "leading_space",
    batch: AudioBatch | None = None,
) -> list[int]:
    return label_token_ids(model.tokenizer, label_names(labels, batch), mode)


def targets_of(batch: AudioBatch) -> Tensor:
    if batch.targets is None:
        raise ValueError("this analysis needs targets: pass labels= to model.prepare")
    return batch.targets


def rival_labels(
    label_logits: Float[Tensor, "batch labels"], targets: Int[Tensor, " batch"]
) -> Int[Tensor, " batch"]:
    """Per row, the best-scoring label other than the target.

    Example:
        >>> rival_labels(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([0]))
        tensor([2])
    """
    others = label_logits.clone()
    others[torch.arange(len(targets)), targets] = float("-inf")
    return others.argmax(-1)


def gap(label_logits: Float[Tensor, "batch labels"], targets: Tensor, rivals: Tensor) -> Float[Tensor, " batch"]:
    """logit(target) − logit(rival) per row."""
    rows = torch.arange(len(targets))
    return label_logits[rows, targets] - label_logits[rows, rivals]
