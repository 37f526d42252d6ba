"""``LensResult``: label logits per layer, sample and position, and the paper's quantities
over them (Eq. 2–4), its tables and its plot.

Tables need pandas and plots matplotlib; both are imported only by the methods that use them.

Example:
    >>> res = al.LogitLens(task).run(model, batch)  # doctest: +SKIP
    >>> res.info_scores(), res.critical_layer()     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .. import metrics
from ..checks import whole_number
from ..errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LensResult:
    """Label logits per layer, sample and position, and the paper's quantities over them.

    ``label_logits`` has shape ``(L + 1, batch, n_positions, n_labels)``; index 0 along the
    first axis is the embedding output, index ℓ the output of block ℓ.
    """

    label_logits: Float[Tensor, "layers batch pos labels"]
    targets: Tensor | None
    labels: tuple[str, ...]
    positions: tuple[str, ...]
    label_token_ids: tuple[int, ...]
    ids: list[str] = field(default_factory=list)
    label_probs: Float[Tensor, "layers batch pos labels"] | None = None

    def __post_init__(self) -> None:
        _, batch, pos, n = self.label_logits.shape
        if n != len(self.labels) or pos != len(self.positions):
            raise ValueError(
                f"label_logits {tuple(self.label_logits.shape)} do not match "
                f"{len(self.positions)} positions and {len(self.labels)} labels"
            )
        if self.targets is not None and tuple(self.targets.shape) != (batch,):
            raise ValueError(f"targets must have shape ({batch},)")
        if not self.ids:
            self.ids = [str(i) for i in range(batch)]

    @property
    def n_layers(self) -> int:
        return self.label_logits.shape[0] - 1

    def __len__(self) -> int:
        return self.label_logits.shape[1]

    def logits_at(self, position: str = "last") -> Float[Tensor, "layers batch labels"]:
        try:
            return self.label_logits[:, :, self.positions.index(str(position))]
        except ValueError:
            raise KeyError(f"position {position!r} not read; this result has {self.positions}") from None

    def _targets(self) -> Tensor:
        if self.targets is None:
            raise ValueError("this result has no targets: pass labels= to model.prepare")
        return self.targets

    def info_scores(self, position: str = "last") -> np.ndarray:
        """Eq. 2 per layer (length L + 1) at ``position``."""
        return metrics.info_scores(self.logits_at(position), self._targets())

    def predictions(self, position: str = "last", layer: int | None = None) -> np.ndarray:
        """Predicted label index per sample at ``layer`` (default: the last)."""
        layer = self.n_layers if layer is None else whole_number(layer, "layer", low=0, high=self.n_layers)
        return metrics.predictions(self.logits_at(position)[layer])

    @property
    def correct(self) -> np.ndarray:
        """Per sample: does the model's own next-token choice among the labels match the target?"""
        return metrics.correct(self.logits_at("last")[self.n_layers], self._targets())

    def accuracy(self) -> float:
        """The model's accuracy: the information score at the last layer and last token."""
        return float(self.info_scores("last")[self.n_layers])

    def contributions(self, alpha: float = 0.2, position: str = "last") -> np.ndarray:
        """Eq. 3 per layer."""
        return metrics.contributions(self.info_scores(position), len(self.labels), alpha)

    def critical_layer(self, alpha: float = 0.2, position: str = "last") -> float:
        """Eq. 4 (NaN with a warning when no layer contributes)."""
        return float(metrics.critical_layer(self.info_scores(position), len(self.labels), alpha))

    def plot(self, position: str = "last", title: str | None = None, ax: Any = None) -> Any:
        """A matplotlib Figure of the information score per layer (imports matplotlib)."""
        from .plots import plot_info_scores

        return plot_info_scores(self, position=position, title=title, ax=ax)

    def subset(self, index: Sequence[int] | np.ndarray | Tensor) -> LensResult:
        """The samples ``index`` (ints or a bool mask), e.g. ``res.subset(~res.correct)``."""
        arr = np.asarray(index)
        if arr.dtype == np.bool_:
            if arr.shape != (len(self),):
                raise ParameterError(f"a mask must have shape ({len(self)},)")
            arr = np.flatnonzero(arr)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) \
                or ((arr < -len(self)) | (arr >= len(self))).any():
            raise ParameterError(f"subset takes row numbers in 0..{len(self) - 1} (at least one) or a bool mask, "
                                 f"got {index!r:.80}")
        index = torch.as_tensor(arr % len(self), dtype=torch.long)
        rows = index.tolist()
        return replace(
            self,
            label_logits=self.label_logits[:, index],
            label_probs=None if self.label_probs is None else self.label_probs[:, index],
            targets=None if self.targets is None else self.targets[index],
            ids=[self.ids[i] for i in rows],
        )

    @staticmethod
    def concat(results: Sequence[LensResult]) -> LensResult:
        """Join results of several batches (same labels, positions and layers)."""
        first = results[0]
        for r in results[1:]:
            if (r.labels, r.positions, r.n_layers) != (first.labels, first.positions, first.n_layers):
                raise ValueError("cannot concatenate results with different labels, positions or depth")
        probs = [r.label_probs for r in results]
        return replace(
            first,
            label_logits=torch.cat([r.label_logits for r in results], dim=1),
            label_probs=None if any(p is None for p in probs) else torch.cat([p for p in probs if p is not None], dim=1),
            targets=None if first.targets is None else torch.cat([r._targets() for r in results]),
            ids=[i for r in results for i in r.ids],
        )

    def to_frame(self, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
        """A tidy table: one row per sample × position × layer × label.

        Columns ``id, label, target, layer, position, logit, probability`` (softmax over the
        labels), ``vocab_probability`` (with ``full_vocab=True``), ``prediction, correct``; see
        :func:`audiolens.lenses.frames.lens_frame`.

        Example:
            >>> df = res.to_frame()                                        # doctest: +SKIP
            >>> df[df.label == df.target].groupby("layer").probability.mean()  # doctest: +SKIP
        """
        from .frames import lens_frame

        return lens_frame(self, positions)

    def info_frame(self, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Per position and layer: ``n``, ``n_correct`` and ``info_score`` (Eq. 2); see
        :func:`audiolens.lenses.frames.info_frame`."""
        from .frames import info_frame

        return info_frame(self, positions)

    def to_parquet(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` to ``path`` as Parquet (atomically; needs pyarrow)."""
        from ..files import write_parquet

        return write_parquet(self.to_frame(), path)
