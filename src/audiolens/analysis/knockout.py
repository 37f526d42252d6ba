"""Attention knockout (Geva et al., 2023): block what a query position reads from a key span
over a sliding window of layers, and see how much the answer depends on it there.

Built on :class:`~audiolens.interventions.AudioMask` and ``LogitLens.run_many``: with the query
at the last token every window shares one prefix pass, so a sweep costs one forward pass plus
one single-token step per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..checks import whole_number
from ..interventions import AudioMask
from ..lenses.logit import LogitLens
from ..tasks import Task
from .common import label_names, targets_of


@dataclass
class KnockoutResult:
    """Target probability (softmax over the label set, last token, last layer) with attention
    from ``queries`` to ``keys`` blocked in blocks ``start .. start + window - 1``.

    ``knocked[i, r]`` is row r with window ``starts[i]``; ``base[r]`` is the plain run.
    """

    keys: str
    window: int
    starts: list[int]
    base: Float[Tensor, " batch"]
    knocked: Float[Tensor, "windows batch"]
    ids: list[str]

    @property
    def delta(self) -> Float[Tensor, "windows batch"]:
        """Change in target probability per window and row (negative: the window mattered)."""
        return self.knocked - self.base[None]

    def to_frame(self):
        """One row per (window, sample): start, end, id, base, knocked, delta."""
        import pandas as pd

        rows = [
            {"start": s, "end": s + self.window - 1, "id": i, "base": float(self.base[r]),
             "knocked": float(self.knocked[w, r]), "delta": float(self.delta[w, r])}
            for w, s in enumerate(self.starts) for r, i in enumerate(self.ids)
        ]
        return pd.DataFrame(rows)

    def summary(self) -> np.ndarray:
        """Mean change in target probability per window start."""
        return self.delta.mean(1).numpy()

    def plot(self, ax=None):
        """Mean change in target probability per window (a matplotlib Figure)."""
        from .plots import plot_knockout

        return plot_knockout(self, ax=ax)


@torch.no_grad()
def attention_knockout(
    model,
    batch,
    labels: Task | Sequence[str],
    keys: str = "audio",
    window: int = 3,
    queries: str | int = "last",
) -> KnockoutResult:
    """Block ``queries`` → ``keys`` attention in every window of ``window`` consecutive blocks.

    A window as deep as the model equals ``AudioMask(keys, queries)`` over all layers.

    Example:
        >>> ko = al.attention_knockout(model, batch, task, keys="audio", window=3)  # doctest: +SKIP
        >>> ko.summary()  # mean change in the target's probability per window  # doctest: +SKIP
    """
    targets = targets_of(batch)
    window = whole_number(window, "attention_knockout: window", low=1, high=model.n_layers)
    starts = list(range(1, model.n_layers - window + 2))
    lens = LogitLens(label_names(labels, batch), positions=("last",))
    variants = {"none": []}
    variants.update({str(s): [AudioMask(keys=keys, queries=queries, layers=range(s, s + window))] for s in starts})
    results = lens.run_many(model, batch, variants)

    def prob(res) -> Tensor:
        p = torch.softmax(res.logits_at("last")[model.n_layers], -1)
        return p[torch.arange(len(targets)), targets]

    return KnockoutResult(
        keys=keys if isinstance(keys, str) else "custom", window=window, starts=starts,
        base=prob(results["none"]), knocked=torch.stack([prob(results[str(s)]) for s in starts]),
        ids=list(batch.ids),
    )
