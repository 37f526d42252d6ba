"""RQ5: choose ℓ̄ on a probe split, then sweep λ of Eq. 5 against a random-layer baseline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .interventions import Enrich
from .lens import LensResult
from .metrics import best_layer

if TYPE_CHECKING:
    import pandas as pd

    from .batch import AudioBatch
    from .hooked import HookedAudioLM
    from .lens import LogitLens

T = TypeVar("T")


def split(items: T, n_probe: int = 100, seed: int = 0) -> tuple[T, T]:
    """Disjoint random probe / test subsets (the paper's 100 / 400), deterministic for a seed.

    ``items`` is anything with ``len()`` and ``.subset(indices)``: a batch, a lens result or
    a data set.

    Example:
        >>> probe, test = split(batch, n_probe=100, seed=0)  # doctest: +SKIP
    """
    n = len(items)
    if not 0 < n_probe < n:
        raise ValueError(f"n_probe must be between 1 and {n - 1} for {n} items, got {n_probe}")
    order = np.random.default_rng(seed).permutation(n)
    return items.subset(np.sort(order[:n_probe])), items.subset(np.sort(order[n_probe:]))


def candidate_layers(n_layers: int, gap: int = 5) -> np.ndarray:
    """Source layers ℓ̄ for which block ℓ̄ + gap exists: 1..L − gap."""
    if n_layers - gap < 1:
        raise ValueError(f"a model with {n_layers} layers leaves no source layer for a gap of {gap}")
    return np.arange(1, n_layers - gap + 1)


def select_enrich_layer(
    probe: LensResult, *, gap: int = 5, position: str = "last"
) -> int:
    """ℓ̄: the layer with the highest information score among wrongly predicted probe samples.

    Only layers 1..L − gap are candidates (Eq. 5 writes to ℓ̄ + gap); ties go to the earliest.

    Example:
        >>> layer = select_enrich_layer(lens.run(model, probe_batch))  # doctest: +SKIP
    """
    wrong = ~probe.correct
    if not wrong.any():
        raise ValueError("every probe sample is predicted correctly: no wrong answers to select ℓ̄ from")
    info = probe.subset(wrong).info_scores(position)
    last = candidate_layers(probe.n_layers, gap)[-1]
    return best_layer(info[: last + 1], min_layer=1)


@dataclass
class SweepResult:
    """Accuracy per (scale, method, seed) of an enrichment sweep.

    ``table`` columns: ``scale`` (λ), ``method`` (``"selected"`` or ``"random"``), ``seed``
    (-1 for the selected layer), ``accuracy``.
    """

    table: pd.DataFrame
    source_layer: int

    def summary(self) -> pd.DataFrame:
        """Mean and standard deviation of accuracy per scale and method."""
        return (
            self.table.groupby(["scale", "method"])["accuracy"]
            .agg(["mean", "std"])
            .reset_index()
        )

    def relative_improvement(self) -> pd.DataFrame:
        """Mean accuracy per scale and method relative to λ = 0: ``acc / acc(λ=0) − 1``."""
        summary = self.summary()
        base = summary.loc[summary["scale"] == 0, "mean"]
        if base.empty:
            raise ValueError("the sweep has no scale 0 to compare against")
        summary["relative_improvement"] = summary["mean"] / float(base.iloc[0]) - 1.0
        return summary


def enrich_sweep(
    model: HookedAudioLM,
    test: AudioBatch | Iterable[AudioBatch],
    lens: LogitLens,
    source_layer: int,
    scales: Sequence[float] = (0, 0.1, 0.2, 0.5, 1, 2),
    *,
    random_baseline_seeds: int | Sequence[int] = 5,
    gap: int = 5,
    progress: bool = True,
) -> SweepResult:
    """Fig. 5: accuracy under Eq. 5 for each λ, with ℓ̄ = ``source_layer`` and with a random
    source layer per sample (one draw per seed).

    Example:
        >>> sweep = enrich_sweep(model, test, lens, source_layer=layer, scales=[0, .5, 1])  # doctest: +SKIP
        >>> sweep.relative_improvement()  # doctest: +SKIP
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .batch import AudioBatch

    batches = [test] if isinstance(test, AudioBatch) else list(test)
    layers = candidate_layers(model.n_layers, gap)
    if source_layer not in layers:
        raise ValueError(f"source_layer {source_layer} must be in {layers[0]}..{layers[-1]} for gap {gap}")
    seeds = list(range(random_baseline_seeds)) if isinstance(random_baseline_seeds, int) else list(random_baseline_seeds)
    # One random layer per sample and seed, drawn once so every λ sees the same layers.
    draws = {s: [np.random.default_rng([s, i]).choice(layers, size=len(b)) for i, b in enumerate(batches)] for s in seeds}

    # Every variant differs only at the last token, so each batch runs its prefix once.
    jobs = [(scale, -1) for scale in scales] + [(scale, s) for scale in scales for s in seeds]
    per_job: dict[tuple[float, int], list[LensResult]] = {job: [] for job in jobs}
    for i, batch in enumerate(tqdm(batches, desc="enrich sweep", disable=not progress)):
        variants = {
            (scale, seed): [Enrich(source_layer if seed < 0 else draws[seed][i], scale, gap=gap)]
            for scale, seed in jobs
        }
        for job, res in lens.run_many(model, batch, variants).items():
            per_job[job].append(res)
    rows = [
        {
            "scale": scale,
            "method": "selected" if seed < 0 else "random",
            "seed": seed,
            "accuracy": LensResult.concat(per_job[(scale, seed)]).accuracy(),
        }
        for scale, seed in jobs
    ]
    return SweepResult(pd.DataFrame(rows), source_layer)
