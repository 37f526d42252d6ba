"""A study's enrichment phase (RQ5) on disk: the probe/test split, ℓ̄ from the probe clips'
records, the sweep's setup file and its rows, resumable batch by batch.

:mod:`audiolens.study.sweep` holds the sweep's maths (candidate layers, the random baseline,
the variants and their rows); this module runs it inside a :class:`~audiolens.study.runner.Study`:
:class:`EnrichmentPhase` plans each attribute's sweep once the probe clips' records are written,
and :class:`SweepPlan` turns a planned sweep into variants and rows for whichever pass runs
its test clips (the lens passes carry them along; :meth:`EnrichmentPhase.run` runs the rest).

Example:
    >>> EnrichConfig.of({"n_probe": 20, "scales": (0.0, 1.0)}).scales
    (0.0, 1.0)
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import StepSkipped
from ..lenses.logit import LogitLens
from . import records as rec
from .sweep import (
    random_source_layers,
    select_enrich_layer,
    selection_evidence,
    sweep_jobs,
    sweep_records,
    sweep_variants,
)

if TYPE_CHECKING:
    from ..batch import AudioBatch
    from ..data import AttributeDataset, Sample
    from ..hooked import HookedAudioLM
    from ..interventions import Intervention
    from ..lenses.result import LensResult
    from ..tasks import Prompt

T = TypeVar("T")

DEFAULT_SCALES = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_ENRICH = MappingProxyType({"n_probe": 100, "scales": DEFAULT_SCALES, "seeds": 5})


@dataclass
class EnrichConfig:
    """RQ5 setup. ``attributes=None`` picks the attribute with the lowest accuracy under
    ``prompt`` (the paper's case study is the hardest one). An ``n_probe`` that would leave less
    than half of the data set for testing becomes a fifth of it (the paper's 100 of 500)."""

    n_probe: int = 100
    scales: Sequence[float] = DEFAULT_SCALES
    seeds: int = 5
    gap: int = 5
    prompt: str = "P3"
    attributes: Sequence[str] | None = None

    @classmethod
    def of(cls, value: EnrichConfig | Mapping[str, Any] | None) -> EnrichConfig | None:
        if value is None or isinstance(value, EnrichConfig):
            return value
        return cls(**dict(value))


def by_length(samples: Sequence[Sample]) -> list[Sample]:
    """``samples`` from shortest to longest clip (ties in their given order), so that a batch
    holds clips of similar length and little padding."""
    return sorted(samples, key=lambda s: s.info().frames / s.info().sampling_rate)


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive pieces of ``size`` (the last may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class SweepPlan:
    """An enrichment sweep set up for one attribute (:meth:`EnrichmentPhase.plan`): its
    variants and rows for any of its test clips, whichever pass runs them."""

    prompt: str
    source_layer: int
    scales: list[float]
    gap: int
    position: dict[str, int]  # test clip id -> its place in the test split
    draws: dict[int, np.ndarray]  # seed -> the random source layer of each test clip
    rows_path: Path
    shard_path: Callable[[int], Path]
    done: set[str]  # clips with all their rows on disk

    @classmethod
    def of(cls, setup: Mapping[str, Any], store: rec.RecordStore, model_name: str, n_layers: int) -> SweepPlan:
        """The plan of the sweep ``setup`` (as written by :meth:`EnrichmentPhase.setup`) of
        ``model_name``'s records in ``store``."""
        attr, prompt, gap = setup["attribute"], setup["prompt"], setup["gap"]
        n, seeds = len(setup["test_ids"]), range(setup["seeds"])
        rows_path, _ = store.enrich_paths(model_name, attr, prompt)
        jobs = len(sweep_jobs(setup["scales"], seeds))
        return cls(
            prompt=prompt,
            source_layer=setup["source_layer"],
            scales=list(setup["scales"]),
            gap=gap,
            position={i: k for k, i in enumerate(setup["test_ids"])},
            draws={s: random_source_layers(s, n, n_layers, gap) for s in seeds},
            rows_path=rows_path,
            shard_path=lambda rank: store.enrich_shard_path(model_name, attr, prompt, rank),
            done=complete_ids(rec.read_records(rows_path), jobs),
        )

    @property
    def jobs(self) -> int:
        """Rows per clip."""
        return len(sweep_jobs(self.scales, list(self.draws)))

    def wants(self, ids: Sequence[str]) -> bool:
        """Are these all test clips still without their sweep rows?"""
        return all(i in self.position and i not in self.done for i in ids)

    def _layers(self, ids: Sequence[str]) -> dict[int, np.ndarray]:
        index = [self.position[i] for i in ids]
        return {seed: d[index] for seed, d in self.draws.items()}

    def variants(self, ids: Sequence[str]) -> Mapping[tuple[float, int], Sequence[Intervention]]:
        return sweep_variants(self.source_layer, self.scales, self._layers(ids), gap=self.gap)

    def record(self, ids: Sequence[str], results: Mapping[Any, LensResult], shard: int | None = None) -> None:
        """Append the rows of ``results`` (which hold every variant of :meth:`variants`)."""
        jobs = sweep_jobs(self.scales, list(self.draws))
        rows = sweep_records({job: results[job] for job in jobs}, self.source_layer, self._layers(ids))
        rec.append_records(self.rows_path if shard is None else self.shard_path(shard), rows)
        self.done.update(ids)


class EnrichmentPhase:
    """The enrichment phase of one model's study: which clips probe and which test, which
    attributes get a sweep, each sweep's setup file, and the sweep rows the lens passes left.

    Args:
        config: the study's :class:`EnrichConfig`.
        store: the study's record store (the probe clips' records are read from it).
        model_name: whose records.
        datasets: the study's data sets, one per attribute.
        prompts: the study's prompt formats (the enrichment prompt must be one of them).
        seed: seeds the probe/test split.
        n_layers: the model's decoder depth (for the random baseline's layers).
        say: where notes go (a changed setup whose rows are recomputed).
    """

    def __init__(
        self,
        config: EnrichConfig,
        store: rec.RecordStore,
        model_name: str,
        datasets: Sequence[AttributeDataset],
        *,
        prompts: Sequence[str],
        seed: int,
        n_layers: int,
        say: Callable[[str], None],
    ):
        self.config = config
        self.store = store
        self.model_name = model_name
        self.datasets = list(datasets)
        self.prompts = list(prompts)
        self.seed = seed
        self.n_layers = n_layers
        self.say = say

    def probe_test(self, ds: AttributeDataset) -> tuple[AttributeDataset, AttributeDataset]:
        """The enrichment's probe and test splits of ``ds``. A probe split that would leave less
        than half to test falls back to the paper's ratio (100 of 500: a fifth)."""
        cfg = self.config
        n_probe = cfg.n_probe if 2 * cfg.n_probe <= len(ds) else max(1, len(ds) // 5)
        return ds.split(n_probe, seed=self.seed)

    def probe_result(self, ds: AttributeDataset) -> LensResult:
        """The plain lens result of ``ds``'s probe clips under the enrichment prompt (their
        records are on disk before the test clips run)."""
        probe = [s.id for s in self.probe_test(ds)[0]]
        return self.store.result(self.model_name, ds.task.name, self.config.prompt, ids=probe)

    def attributes(self) -> list[AttributeDataset]:
        """The data sets the sweep runs on: the configured attributes, else the one the model
        answers worst on its probe clips (so that the test clips play no part in the choice)."""
        cfg = self.config
        if cfg.prompt not in self.prompts:
            raise ValueError(
                f"enrichment prompt {cfg.prompt} is not among the study's prompts {self.prompts}"
            )
        by_name = {d.task.name: d for d in self.datasets}
        if cfg.attributes is not None:
            for attr in cfg.attributes:
                if attr not in by_name:
                    raise ValueError(f"enrichment attribute {attr!r} has no data set in this study")
            return [by_name[a] for a in cfg.attributes]
        acc = {a: self.probe_result(d).accuracy() for a, d in by_name.items()}
        return [by_name[min(acc, key=lambda a: (acc[a], a))]] if acc else []

    def plan(self) -> dict[str, dict[str, Any]]:
        """Set each sweep up from the probe clips' records (ℓ̄, written to its setup file);
        the setups of the sweeps that have a layer to add, by attribute."""
        setups = {ds.task.name: self.setup(ds) for ds in self.attributes()}
        return {a: setup for a, setup in setups.items() if setup["source_layer"] is not None}

    def sweep(self, setup: Mapping[str, Any]) -> SweepPlan:
        """The :class:`SweepPlan` of a planned sweep."""
        return SweepPlan.of(setup, self.store, self.model_name, self.n_layers)

    def setup(self, ds: AttributeDataset) -> dict[str, Any]:
        """The sweep's setup for ``ds`` (ℓ̄ from the probe clips' wrong answers), written to
        its setup file."""
        cfg = self.config
        attr = ds.task.name
        rows_path, setup_path = self.store.enrich_paths(self.model_name, attr, cfg.prompt)
        probe, test = self.probe_test(ds)
        probe_res = self.probe_result(ds)
        setup = {
            "attribute": attr,
            "prompt": cfg.prompt,
            "gap": cfg.gap,
            "seed": self.seed,
            "n_probe": len(probe),
            "n_test": len(test),
            "scales": [float(s) for s in cfg.scales],
            "seeds": cfg.seeds,
            "probe_ids": [s.id for s in probe],
            "test_ids": [s.id for s in test],
            "probe_info_wrong": None,
            "source_layer": None,
            "note": "",
        }
        wrong = ~probe_res.correct
        if not wrong.any():
            setup["note"] = "every probe sample is predicted correctly: no layer to select"
            warnings.warn(f"{attr}: {setup['note']}; enrichment skipped", StepSkipped, stacklevel=2)
        else:
            setup["source_layer"] = select_enrich_layer(probe_res, gap=cfg.gap)
            setup["probe_info_wrong"] = probe_res.subset(wrong).info_scores("last").tolist()
        self._write_setup(setup_path, rows_path, setup)
        return setup

    def _write_setup(self, setup_path: Path, rows_path: Path, setup: dict[str, Any]) -> None:
        """Write the sweep's setup; rows recorded under a different setup are dropped."""
        if sweep_changed(setup_path, setup) and rows_path.exists():
            self.say(f"{setup['attribute']} ({setup['prompt']}): the enrichment setup changed; "
                     "its sweep rows are recomputed")
            rows_path.unlink()
        rec.write_atomic(setup_path, json.dumps(setup, indent=2, ensure_ascii=False) + "\n")

    def run(
        self,
        setups: Mapping[str, Mapping[str, Any]],
        model: HookedAudioLM,
        make_batch: Callable[[Sequence[Sample], Prompt], AudioBatch],
        *,
        batch_size: int,
        backend: str = "hooks",
        progress: bool = True,
    ) -> None:
        """The rows of the planned sweeps (``setups``, by attribute) that the lens passes did
        not write (all of them when the main records were already on disk): one prefix pass
        per batch of ``batch_size`` clips (made by ``make_batch``) for every λ and seed."""
        from tqdm.auto import tqdm

        by_name = {d.task.name: d for d in self.datasets}
        for attr, setup in setups.items():
            ds = by_name[attr]
            plan = self.sweep(setup)
            lens = LogitLens(ds.task, positions=("last",))
            test = list(self.probe_test(ds)[1].samples)
            todo = sweep_todo(plan.rows_path, chunks(by_length(test), batch_size), plan.jobs)
            # A killed sweep resumes at its first incomplete batch.
            for chunk in tqdm(todo, desc=f"enrich {attr}", unit="batch", disable=not progress or not todo):
                ids = [s.id for s in chunk]
                batch = make_batch(chunk, ds.task.prompt(setup["prompt"]))
                plan.record(ids, lens.run_many(model, batch, plan.variants(ids), backend=backend))


def probe_wrong(store: rec.RecordStore, model: str, setup: Mapping[str, Any]) -> np.ndarray:
    """Which of the sweep's probe clips the model answered wrongly (plain run, in
    ``setup["probe_ids"]`` order), from the records."""
    res = store.result(model, setup["attribute"], setup["prompt"])
    index = {i: k for k, i in enumerate(res.ids)}
    return ~res.subset([index[i] for i in setup["probe_ids"] if i in index]).correct


def choice_caveat(store: rec.RecordStore, model: str, setup: Mapping[str, Any]) -> str | None:
    """Why the sweep's ℓ̄ rests on no evidence (too few wrong probe clips, or a score of 0 at
    every candidate layer), or None (see :func:`~audiolens.study.sweep.selection_evidence`)."""
    if setup.get("source_layer") is None:
        return None
    n_wrong = int(probe_wrong(store, model, setup).sum())
    return selection_evidence(setup.get("probe_info_wrong"), n_wrong, gap=setup["gap"])


def sweep_todo(path: Path, batches: list[Sequence[Sample]], jobs: int) -> list[Sequence[Sample]]:
    """The sweep's batches still to run. A batch is done when each of its clips has all
    ``jobs`` rows; the rows of unfinished batches (and of an older per-λ layout) are dropped
    from the file so that those batches run again from scratch."""
    rec.repair(path)
    rows = rec.read_records(path)
    complete = complete_ids(rows, jobs)
    todo = [c for c in batches if any(s.id not in complete for s in c)]
    redo = {s.id for c in todo for s in c}
    keep = [r for r in rows if "id" in r and r["id"] not in redo]
    if len(keep) < len(rows):
        rec.write_records(path, keep)
    return todo


def complete_ids(rows: Sequence[Mapping[str, Any]], jobs: int) -> set[str]:
    """The clips with all ``jobs`` of their sweep rows among ``rows``."""
    count = Counter(r["id"] for r in rows if "id" in r)
    return {i for i, n in count.items() if n == jobs}


def sweep_changed(path: Path, setup: Mapping[str, Any]) -> bool:
    """Whether the sweep set up at ``path`` differs from ``setup`` in what its rows depend on."""
    if not path.is_file():
        return False
    try:
        old = rec.load_json(path, "an enrichment sweep's setup")
    except rec.RecordError:
        return True  # unreadable: its rows cannot be trusted to match; they are redone
    keys = ("source_layer", "gap", "scales", "seeds", "test_ids", "prompt")
    return any(old.get(k) != setup.get(k) for k in keys)


__all__ = [
    "DEFAULT_ENRICH",
    "DEFAULT_SCALES",
    "EnrichConfig",
    "EnrichmentPhase",
    "SweepPlan",
    "by_length",
    "choice_caveat",
    "chunks",
    "complete_ids",
    "probe_wrong",
    "sweep_changed",
    "sweep_todo",
]
