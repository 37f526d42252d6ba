"""RQ5: choose ℓ̄ on a probe split, then sweep λ of Eq. 5 against a random-layer baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from jaxtyping import Int

from ..interventions import Enrich
from ..lenses.result import LensResult
from ..metrics import answer_changes, best_layer

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Self  # typing.Self from Python 3.11 on

    from ..batch import AudioBatch
    from ..hooked import HookedAudioLM
    from ..lenses.logit import LogitLens

T = TypeVar("T", bound="Subsettable")


class Subsettable(Protocol):
    """What :func:`split` takes: anything with ``len()`` and ``.subset(indices)``."""

    def __len__(self) -> int: ...

    def subset(self, index: Any, /) -> Self: ...


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


MIN_WRONG_PROBE = 5  # fewest wrong probe clips a choice of ℓ̄ may rest on


def selection_evidence(
    info_wrong: Sequence[float] | None, n_wrong: int, *, gap: int, min_wrong: int = MIN_WRONG_PROBE
) -> str | None:
    """Why a choice of ℓ̄ rests on no evidence, or None when it rests on some.

    ``info_wrong`` is the wrong probe clips' information score per layer 0..L (what
    :func:`select_enrich_layer` maximised), ``n_wrong`` their number. The choice means nothing
    when there were fewer than ``min_wrong`` such clips, or when the score is 0 at every
    candidate layer 1..L − gap (ℓ̄ is then the tie-break, the earliest candidate).

    Example:
        >>> selection_evidence([0.0, 0.0, 0.0, 0.0, 0.5], n_wrong=12, gap=2)
        'the 12 wrong probe clips score 0 at every candidate layer (1..2): ℓ̄ = 1 is a tie-break'
        >>> selection_evidence([0.0, 0.25, 0.0, 0.0, 0.5], n_wrong=12, gap=2) is None
        True
    """
    reasons = []
    if n_wrong < min_wrong:
        reasons.append(f"only {n_wrong} wrong probe clip{'' if n_wrong == 1 else 's'} (< {min_wrong})")
    if info_wrong is not None and n_wrong:
        last = len(info_wrong) - 1 - gap
        if last >= 1 and max(info_wrong[1 : last + 1]) == 0:
            reasons.append(f"the {n_wrong} wrong probe clips score 0 at every candidate layer (1..{last}): "
                           "ℓ̄ = 1 is a tie-break")
    return "; ".join(reasons) or None


def random_source_layers(seed: int, n: int, n_layers: int, gap: int = 5) -> np.ndarray:
    """The random baseline's source layer for each of ``n`` test clips under ``seed``.

    Drawn once for the whole test split (clip k gets entry k), so that neither batching nor
    resuming a sweep changes which layer a clip is enriched from.

    Example:
        >>> random_source_layers(0, 4, n_layers=8, gap=5)
        array([3, 2, 2, 1])
    """
    return np.random.default_rng(seed).choice(candidate_layers(n_layers, gap), size=n)


def sweep_jobs(scales: Sequence[float], seeds: Sequence[int]) -> list[tuple[float, int]]:
    """The sweep's (λ, seed) variants; seed −1 is the selected layer ℓ̄."""
    return [(float(scale), -1) for scale in scales] + [
        (float(scale), int(s)) for scale in scales for s in seeds
    ]


def sweep_variants(
    source_layer: int,
    scales: Sequence[float],
    random_layers: Mapping[int, Int[np.ndarray, " batch"]],
    *,
    gap: int = 5,
) -> dict[tuple[float, int], list[Enrich]]:
    """The sweep's variants for one batch, keyed by (λ, seed) (see :func:`sweep_jobs`):
    ``random_layers[seed]`` holds each clip's random source layer
    (:func:`random_source_layers`)."""
    return {
        job: [Enrich(source_layer if job[1] < 0 else random_layers[job[1]], job[0], gap=gap)]
        for job in sweep_jobs(scales, list(random_layers))
    }


def sweep_records(
    results: Mapping[tuple[float, int], LensResult],
    source_layer: int,
    random_layers: Mapping[int, Int[np.ndarray, " batch"]],
) -> list[dict[str, Any]]:
    """One row per clip and (λ, method, seed) of :func:`sweep_variants`' results: the layer
    added, the answer and whether it is right."""
    rows = []
    for (scale, seed), res in results.items():
        layers = np.broadcast_to(source_layer if seed < 0 else random_layers[seed], (len(res),))
        for i, pred, right, layer in zip(res.ids, res.predictions(), res.correct, layers):
            rows.append({
                "id": i, "scale": float(scale), "method": "selected" if seed < 0 else "random",
                "seed": int(seed), "layer": int(layer), "prediction": res.labels[int(pred)],
                "correct": bool(right),
            })
    return rows


def sweep_rows(
    model: HookedAudioLM,
    batch: AudioBatch,
    lens: LogitLens,
    source_layer: int,
    scales: Sequence[float],
    random_layers: Mapping[int, Int[np.ndarray, " batch"]],
    *,
    gap: int = 5,
    backend: str = "hooks",
) -> list[dict[str, Any]]:
    """:func:`sweep_records` of one batch. Every variant differs only at the last token, so the
    batch's prefix runs once for all λ and seeds (see :meth:`LogitLens.run_many`)."""
    variants = sweep_variants(source_layer, scales, random_layers, gap=gap)
    return sweep_records(lens.run_many(model, batch, variants, backend=backend), source_layer, random_layers)


@dataclass
class SweepResult:
    """Accuracy per (scale, method, seed) of an enrichment sweep, and the answers behind it.

    ``table`` columns: ``scale`` (λ), ``method`` (``"selected"`` or ``"random"``), ``seed``
    (-1 for the selected layer), ``accuracy``, ``n``. ``rows`` (when known) has one row per
    clip and variant: ``id``, ``scale``, ``method``, ``seed``, ``layer``, ``prediction``,
    ``correct``.
    """

    table: pd.DataFrame
    source_layer: int
    rows: pd.DataFrame | None = None

    @classmethod
    def from_rows(cls, rows: pd.DataFrame | Sequence[Mapping[str, Any]], source_layer: int) -> SweepResult:
        """Aggregate per-clip rows (see :func:`sweep_rows`) into accuracies."""
        import pandas as pd

        rows = pd.DataFrame(rows)
        table = (
            rows.groupby(["scale", "method", "seed"], sort=False)["correct"]
            .agg(accuracy="mean", n="size")
            .reset_index()
        )
        table["method"] = pd.Categorical(table["method"], ["selected", "random"])
        table = table.sort_values(["scale", "method", "seed"], kind="stable").reset_index(drop=True)
        table["method"] = table["method"].astype(str)
        return cls(table, source_layer, rows)

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

    def changed_answers(self) -> pd.DataFrame:
        """Per (scale, method, seed): how many clips' answers differ from λ = 0 (no change),
        and how many of those turned right (``fixed``) or wrong (``broken``).

        Example:
            >>> sweep.changed_answers().query("method == 'selected'")  # doctest: +SKIP
        """
        if self.rows is None:
            raise ValueError("this sweep kept no per-clip rows")
        rows = self.rows
        base = rows[(rows["scale"] == 0) & (rows["method"] == "selected")]
        if base.empty:
            raise ValueError("the sweep has no scale 0 to compare against")
        return answer_changes(rows, base, ["scale", "method", "seed"])


def enrich_sweep(
    model: HookedAudioLM,
    test: AudioBatch | Iterable[AudioBatch],
    lens: LogitLens,
    source_layer: int,
    scales: Sequence[float] = (0, 0.1, 0.2, 0.5, 1, 2),
    *,
    random_baseline_seeds: int | Sequence[int] = 5,
    gap: int = 5,
    backend: str = "hooks",
    progress: bool = True,
) -> SweepResult:
    """Fig. 5: accuracy under Eq. 5 for each λ, with ℓ̄ = ``source_layer`` and with a random
    source layer per clip (one draw per seed). Each batch's prefix runs once for every λ and
    seed.

    Example:
        >>> sweep = enrich_sweep(model, test, lens, source_layer=layer, scales=[0, .5, 1])  # doctest: +SKIP
        >>> sweep.relative_improvement()  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from ..batch import AudioBatch

    batches = [test] if isinstance(test, AudioBatch) else list(test)
    layers = candidate_layers(model.n_layers, gap)
    if source_layer not in layers:
        raise ValueError(f"source_layer {source_layer} must be in {layers[0]}..{layers[-1]} for gap {gap}")
    seeds = list(range(random_baseline_seeds)) if isinstance(random_baseline_seeds, int) else list(random_baseline_seeds)
    n = sum(len(b) for b in batches)
    draws = {s: random_source_layers(s, n, model.n_layers, gap) for s in seeds}
    rows, start = [], 0
    for batch in tqdm(batches, desc="enrich sweep", disable=not progress or not batches):
        here = {s: d[start : start + len(batch)] for s, d in draws.items()}
        rows += sweep_rows(model, batch, lens, source_layer, scales, here, gap=gap, backend=backend)
        start += len(batch)
    return SweepResult.from_rows(rows, source_layer)
