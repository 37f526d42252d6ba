"""Attention knockout (Geva et al., 2023): block what a query position reads from a key span
over a sliding window of layers, and see how much the answer depends on it there.

Built on :class:`~audiolens.interventions.AudioMask` and ``LogitLens.run_many``: with the query
at the last token every window shares one prefix pass, so a sweep costs one forward pass plus
one single-token step per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..checks import whole_number
from ..interventions import AudioMask, Intervention
from ..lenses.logit import LogitLens
from ..lenses.result import LensResult
from ..tasks import Task
from .common import label_names, targets_of

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import AudioBatch
    from ..hooked import HookedAudioLM


KNOCKOUT = "knockout_"  # prefix of the knockout interventions' names in a study


def knockout_windows(n_layers: int, window: int) -> tuple[int, list[int]]:
    """The window depth (a whole number in 1..``n_layers``, else :class:`ParameterError`), and
    the first block of each window of that many consecutive blocks.

    Example:
        >>> knockout_windows(4, 3)
        (3, [1, 2])
    """
    window = whole_number(window, "knockout window (consecutive blocks)", low=1, high=n_layers)
    return window, list(range(1, n_layers - window + 2))


def knockout_interventions(
    n_layers: int, window: int, keys: Sequence[str] = ("audio", "question")
) -> dict[str, list[Intervention]]:
    """``knockout_{keys}`` (every block) and ``knockout_{keys}_{start}-{end}`` (each window of
    ``window`` blocks) for each span in ``keys``: the answer token cannot read them there.

    Example:
        >>> sorted(knockout_interventions(4, 3))[:3]
        ['knockout_audio', 'knockout_audio_1-3', 'knockout_audio_2-4']
    """
    window, starts = knockout_windows(n_layers, window)
    out: dict[str, list[Intervention]] = {}
    for span in keys:
        out[f"{KNOCKOUT}{span}"] = [AudioMask(keys=span)]
        for start in starts:
            end = start + window - 1
            out[f"{KNOCKOUT}{span}_{start}-{end}"] = [AudioMask(keys=span, layers=range(start, end + 1))]
    return out


def parse_knockout(name: str) -> tuple[str, str] | None:
    """The key span and window (``"all"`` for every block) of a name from
    :func:`knockout_interventions`; None for any other name.

    Example:
        >>> parse_knockout("knockout_audio_1-3"), parse_knockout("knockout_question")
        (('audio', '1-3'), ('question', 'all'))
    """
    if not name.startswith(KNOCKOUT):
        return None
    span, _, window = name[len(KNOCKOUT):].partition("_")
    return span, window or "all"


def target_probability(result: LensResult, targets: Tensor | None = None) -> Float[Tensor, " batch"]:
    """Per row, the probability of its target (``targets``, default the result's) under a
    softmax over the label set, at the last token and the last layer."""
    targets = result.targets if targets is None else torch.as_tensor(targets)
    if targets is None:
        raise ValueError("this result has no targets: pass labels= to model.prepare")
    p = torch.softmax(result.logits_at("last")[result.n_layers], -1)
    return p[torch.arange(len(targets)), targets]


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

    def to_frame(self) -> pd.DataFrame:
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

    def plot(self, ax: Any = None) -> Any:
        """Mean change in target probability per window (a matplotlib Figure)."""
        from .plots import plot_knockout

        return plot_knockout(self, ax=ax)


@torch.no_grad()
def attention_knockout(
    model: HookedAudioLM,
    batch: AudioBatch,
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
    window, starts = knockout_windows(model.n_layers, window)
    lens = LogitLens(label_names(labels, batch), positions=("last",))
    variants: dict[str, list[Intervention]] = {"none": []}
    variants.update({str(s): [AudioMask(keys=keys, queries=queries, layers=range(s, s + window))] for s in starts})
    results = lens.run_many(model, batch, variants)
    return KnockoutResult(
        keys=keys if isinstance(keys, str) else "custom", window=window, starts=starts,
        base=target_probability(results["none"], targets),
        knocked=torch.stack([target_probability(results[str(s)], targets) for s in starts]),
        ids=list(batch.ids),
    )
