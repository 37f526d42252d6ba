"""The study runner: every (model, attribute, prompt format, intervention) of the paper, on disk.

``Study(model, datasets).run()`` runs the logit lens batch by batch and appends each batch's
per-sample records to JSON Lines files (see :mod:`audiolens.study.records`) as it goes, so an
interrupted run picks up where it stopped. Tables and figures are computed from the records
alone: ``Study.load(out)`` re-analyses a finished run without the model.

Under ``torchrun`` / ``accelerate launch`` the same ``run()`` is data parallel: each rank takes
its share of the clips and writes its own record shards, and rank 0 merges them (see
:mod:`audiolens.study.distributed`). One run at a time writes a model's records into a folder.

Example:
    >>> import audiolens as al
    >>> from audiolens.data import load_sakura
    >>> model = al.models.tiny_qwen2_audio(seed=0, n_layers=8)             # doctest: +SKIP
    >>> study = Study(model, [load_sakura(root, "gender")], out="results")  # doctest: +SKIP
    >>> study.run().table2()                                               # doctest: +SKIP
    >>> Study.load("results").figure(2)                                    # doctest: +SKIP
    PosixPath('results/figures/fig2.png')
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..interventions import AudioMask, Intervention
from ..lenses.logit import LogitLens
from ..lenses.result import LensResult
from ..tasks import PROMPT_FORMATS
from . import records as rec
from .distributed import world
from .sweep import (
    candidate_layers,
    random_source_layers,
    select_enrich_layer,
    sweep_jobs,
    sweep_records,
    sweep_variants,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..data import AttributeDataset, Sample
    from ..hooked import HookedAudioLM

T = TypeVar("T")

POSITIONS = ("last", "attribute")
DEFAULT_SCALES = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_ENRICH = MappingProxyType({"n_probe": 100, "scales": DEFAULT_SCALES, "seeds": 5})


def default_interventions(model: HookedAudioLM | None = None) -> dict[str, list[Intervention]]:
    """RQ1–RQ3 read the plain model ("none"); RQ4 masks the audio at the last token: the
    spans the model's family names in ``masked_spans`` (e.g. DeSTA2's audio and transcript,
    paper footnote 4), the audio span alone without a model."""
    spans = model.architecture.masked_spans if model is not None else ("audio",)
    return {"none": [], "audio_mask": [AudioMask(keys=spans[0] if len(spans) == 1 else tuple(spans))]}


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


def model_label(model: HookedAudioLM) -> str:
    """A name for records: the checkpoint's name or path, else the HF class name."""
    config = getattr(model.hf_model, "config", None)
    name = str(getattr(config, "_name_or_path", "") or "").rstrip("/")
    return name.split("/")[-1] if name else type(model.hf_model).__name__


class Study:
    """Run (or reload) the paper's analyses for one model over several attribute data sets.

    Args:
        model: a :class:`HookedAudioLM`, or None for a study loaded from disk.
        datasets: one :class:`~audiolens.data.AttributeDataset` per attribute.
        prompts: prompt formats to run.
        batch_size: rows per forward pass (records are flushed after each).
        out: output folder (records, tables, figures).
        model_name: name in records and tables (default: from the model's config).
        seed: seeds the probe/test split and the random-layer baseline.
        interventions: name -> interventions applied in the lens run ("none" must be present).
        enrich: an :class:`EnrichConfig` or its keyword arguments; None skips RQ5.
        truncate: cut clips longer than the model's audio window instead of raising.
        alpha: α of Eq. 3.
        progress: show a tqdm bar (rank 0's, in a data-parallel run).
        backend: how interventions execute, ``"hooks"`` or ``"nnsight"`` (:mod:`audiolens.backends`).
        knockout: optional attention-knockout analysis (Geva et al., 2023): the answer token's
            attention to ``"audio"`` and to ``"question"`` (P2, P3) is blocked in every window of
            ``knockout`` consecutive blocks, and in all blocks at once; each window is a recorded
            intervention, so it resumes like the rest (:meth:`knockout_table`).
        log: where the run's notes go (what a resumed run found and reuses); default: standard
            error when ``progress`` is on.
    """

    def __init__(
        self,
        model: HookedAudioLM | None,
        datasets: Sequence[AttributeDataset] = (),
        prompts: Sequence[str] = PROMPT_FORMATS,
        batch_size: int = 8,
        out: str | Path = "results/",
        model_name: str | None = None,
        seed: int = 0,
        interventions: Mapping[str, Sequence[Intervention]] | None = None,
        enrich: EnrichConfig | Mapping[str, Any] | None = DEFAULT_ENRICH,
        *,
        truncate: bool = False,
        alpha: float = 0.2,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        backend: str = "hooks",
        knockout: int | None = None,
    ):
        self.model = model
        self.datasets = list(datasets)
        self.prompts = list(prompts)
        self.batch_size = int(batch_size)
        self.out = Path(out)
        self.seed = seed
        self.interventions = {
            k: list(v) for k, v in (interventions or default_interventions(model)).items()
        }
        self.backend = backend
        if knockout is not None and model is not None:
            self.interventions.update(knockout_interventions(model.n_layers, knockout))
        self.enrich = EnrichConfig.of(enrich) if model is not None else None
        self.truncate = truncate
        self.alpha = alpha
        self.progress = progress
        self.log = log
        self.store = rec.RecordStore(self.out)
        self.model_name = model_name or (model_label(model) if model is not None else None)
        if model is None:
            return
        bad = [p for p in self.prompts if p not in PROMPT_FORMATS]
        if bad:
            raise ValueError(f"unknown prompt formats {bad}; choose from {PROMPT_FORMATS}")
        if "none" not in self.interventions:
            raise ValueError("interventions must include 'none' (the plain run every table uses)")
        names = [d.task.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"one data set per attribute, got {names}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if self.enrich is not None:
            candidate_layers(model.n_layers, self.enrich.gap)  # fail now, not after the long run

    @classmethod
    def load(cls, out: str | Path) -> Study:
        """A finished study's records, for tables and figures without a model.

        Every record file is checked first (:meth:`RecordStore.verify
        <audiolens.study.records.RecordStore.verify>`): duplicated ids raise, truncated lines and
        missing samples warn, naming the file."""
        study = cls(None, out=out)
        if not study.store.models():
            raise rec.RecordError(f"no study records under {Path(out) / 'records'}")
        study.store.verify()
        return study

    # ------------------------------------------------------------------ running
    def _keys(self, attribute: str) -> list[rec.RecordKey]:
        task = next((d.task for d in self.datasets if d.task.name == attribute), None)
        return [
            rec.RecordKey(self.model_name, attribute, p, i)
            for p in self.prompts
            for i in self.interventions
            # a knockout of the question needs a prompt that asks one (P1 has none)
            if not (i.startswith(KNOCKOUT + "question") and task is not None and not task.prompt(p).question)
        ]

    def _write_meta(self) -> None:
        from ..labels import label_token_ids

        model = self.model
        self.store.write_meta(
            {
                "model": self.model_name,
                "n_layers": model.n_layers,
                "positions": list(POSITIONS),
                "attributes": {
                    d.task.name: {
                        "labels": list(d.task.labels),
                        "label_token_ids": label_token_ids(model.tokenizer, d.task.labels),
                        "ids": [s.id for s in d.samples],  # what a complete run holds
                    }
                    for d in self.datasets
                },
                "prompts": self.prompts,
                "interventions": list(self.interventions),
                "alpha": self.alpha,
                "seed": self.seed,
            }
        )

    def _batch(self, samples, prompt, waves: dict[str, Any] | None = None):
        """A model batch of ``samples`` under ``prompt``; ``waves`` caches loaded clips by id."""
        rate, max_seconds = self.model.sampling_rate, self.model.max_audio_seconds
        waves = {} if waves is None else waves
        for s in samples:
            if s.id not in waves:
                waves[s.id] = s.load(rate, max_seconds=max_seconds, truncate=self.truncate)
        return self.model.prepare(
            [waves[s.id] for s in samples],
            rate,
            prompt,
            [s.label for s in samples],
            ids=[s.id for s in samples],
            truncate=self.truncate,
        )

    def run(self, wait: float = 0.0) -> Study:
        """Run every missing record, then the enrichment sweep; returns ``self``.

        Samples whose id is already in a record file are skipped, so calling ``run`` again after
        an interruption computes only what is missing (and says how many records it reuses).

        One run at a time writes a model's records into one output folder: a second run waits
        up to ``wait`` seconds for the first to finish, then raises
        :class:`~audiolens.study.records.FolderBusy` ("folder busy: another run (pid, host) holds
        ...").

        Under ``torchrun`` / ``accelerate launch`` every rank calls ``run``: clip i of each data
        set goes to rank i mod world size, each rank appends to its own shard files, then rank 0
        merges the shards into the usual files and runs the enrichment sweep while the other
        ranks wait. A rank killed mid-run leaves its shard to resume from, as a one-process run
        does; resuming with another world size (or one process) works too.
        """
        from tqdm.auto import tqdm

        if self.model is None:
            raise ValueError("this study was loaded from disk; pass a model to run it")
        with world() as ranks, ExitStack() as held:

            def open_folder() -> rec.Consolidation:
                lock = self.store.lock(self.model_name, wait=wait, world_size=ranks.size)
                held.enter_context(lock)  # released when run() ends, however it ends
                self._write_meta()
                return self._consolidate()  # shards of a killed run, cut lines, duplicates

            found = ranks.on_main(open_folder)  # the others wait for the lock and the merge
            done = {
                key: self.store.done_ids(key)
                for ds in self.datasets
                for key in self._keys(ds.task.name)
            }
            if ranks.is_main:
                self._note_resume(found, done)
            # With an enrichment sweep the probe clips run first: ℓ̄ is chosen from them, and the
            # test clips' pass then carries the sweep's variants too (one pass per clip).
            phases = self._phases()
            total = sum(
                s.id not in done[key]
                for phase in phases
                for ds in self.datasets
                for key in self._keys(ds.task.name)
                for s in ranks.shard(phase[ds.task.name])
            )
            shard = ranks.rank if ranks.distributed else None
            desc = f"lens {self.model_name}" + (
                f" (rank 0 of {ranks.size})" if ranks.distributed else ""
            )
            setups: dict[str, dict[str, Any]] = {}
            with tqdm(
                total=total, desc=desc, unit="row", disable=not (self.progress and ranks.is_main)
            ) as bar:
                sweeps: dict[str, _SweepPlan] = {}
                for k, phase in enumerate(phases):
                    for ds in self.datasets:
                        # Shortest clips first: a batch then pads little.
                        mine = by_length(ranks.shard(phase[ds.task.name]))
                        self._run_dataset(ds, mine, done, bar, shard, sweeps.get(ds.task.name))
                    if ranks.distributed:
                        ranks.barrier()  # every shard complete before rank 0 merges them
                        ranks.on_main(self._consolidate)
                    if k + 1 < len(phases):
                        setups = ranks.on_main(self._plan_sweeps)
                        sweeps = {a: _SweepPlan.of(setup, self) for a, setup in setups.items()}
            if self.enrich is not None:
                # Whatever the passes left (a resumed folder, a changed setup) runs here.
                ranks.on_main(lambda: self._run_enrich(setups))
        return self

    def _consolidate(self) -> rec.Consolidation:
        total = rec.Consolidation()
        for ds in self.datasets:
            order = [s.id for s in ds.samples]
            for key in self._keys(ds.task.name):
                total += self.store.consolidate(key, order)
        for attr, prompt in self.store.enrichments(self.model_name):
            self.store.merge_enrich_shards(self.model_name, attr, prompt)
        return total

    def _note_resume(self, found: rec.Consolidation, done: dict[rec.RecordKey, set[str]]) -> None:
        todo = sum(
            sum(s.id not in done[key] for s in ds.samples)
            for ds in self.datasets
            for key in self._keys(ds.task.name)
        )
        notes = []
        if found.found:
            notes.append(f"found {found.found} records, reusing them; {todo} rows left to compute")
        if found.merged:
            notes.append(f"merged {found.merged} shard files of an earlier data-parallel run")
        if found.dropped:
            notes.append(f"dropped {found.dropped} records written twice")
        if found.cut:
            notes.append(f"cut {found.cut} bytes of lines left unfinished by a killed run")
        if notes:
            folder = self.store.meta_path(self.model_name).parent
            self._say(f"{self.model_name} ({folder}): " + "; ".join(notes))

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)
        elif self.progress:
            print(message, file=sys.stderr, flush=True)

    def _run_dataset(
        self,
        ds: AttributeDataset,
        samples: Sequence[Any],
        done: dict[rec.RecordKey, set[str]],
        bar,
        shard: int | None,
        sweep: _SweepPlan | None = None,
    ) -> None:
        """Records of ``samples`` (this rank's share of ``ds``) into the main files, or into
        rank ``shard``'s files in a data-parallel run; with ``sweep``, the enrichment sweep's
        rows of the test clips among them, from the same passes."""
        lens = LogitLens(ds.task, positions=POSITIONS)
        keys = self._keys(ds.task.name)
        target = {k: k.path(self.out) if shard is None else k.shard_path(self.out, shard) for k in keys}
        # Fixed chunks of the share: a resumed run sees the same batches as an uninterrupted one.
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start : start + self.batch_size]
            waves: dict[str, Any] = {}  # each clip is read once per chunk, not once per run
            # (prompt, intervention) records missing the same rows share one set of batches: the
            # prompts share one pass over the audio, the interventions one step each (run_formats).
            groups: dict[tuple[str, ...], list[rec.RecordKey]] = {}
            for key in keys:
                ids = tuple(s.id for s in chunk if s.id not in done[key])
                if ids:
                    groups.setdefault(ids, []).append(key)
            for ids, group in groups.items():
                missing = [s for s in chunk if s.id in set(ids)]
                prompts = sorted({k.prompt for k in group}, key=self.prompts.index)
                batches = {p: self._batch(missing, ds.task.prompt(p), waves) for p in prompts}
                wanted = {p: {k.intervention: self.interventions[k.intervention] for k in group if k.prompt == p}
                          for p in prompts}
                swept = sweep is not None and sweep.prompt in wanted and sweep.wants(ids)
                if swept:
                    wanted[sweep.prompt] |= sweep.variants(ids)
                results = lens.run_formats(self.model, batches, {}, extra=wanted, backend=self.backend)
                if swept:
                    sweep.record(ids, results[sweep.prompt], shard)
                for key in group:
                    rec.append_records(target[key], rec.sample_records(results[key.prompt][key.intervention]))
                    done[key].update(ids)
                    bar.update(len(ids))

    def _phases(self) -> list[dict[str, list[Sample]]]:
        """The clips of each attribute in the order they run: with an enrichment sweep, every
        probe clip first, then the rest; else all in one go."""
        if self.enrich is None:
            return [{d.task.name: list(d.samples) for d in self.datasets}]
        split = {d.task.name: self._probe_test(d) for d in self.datasets}
        return [{a: list(p.samples) for a, (p, _) in split.items()},
                {a: list(t.samples) for a, (_, t) in split.items()}]

    def _probe_test(self, ds: AttributeDataset) -> tuple[AttributeDataset, AttributeDataset]:
        """The enrichment's probe and test splits of ``ds``. A probe split that would leave less
        than half to test falls back to the paper's ratio (100 of 500: a fifth)."""
        cfg = self.enrich
        assert cfg is not None
        n_probe = cfg.n_probe if 2 * cfg.n_probe <= len(ds) else max(1, len(ds) // 5)
        return ds.split(n_probe, seed=self.seed)

    def _sweep_attributes(self) -> list[AttributeDataset]:
        """The data sets the sweep runs on: the configured attributes, else the one the model
        answers worst on its probe clips (so that the test clips play no part in the choice)."""
        cfg = self.enrich
        assert cfg is not None
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
        acc = {a: self._probe_result(d).accuracy() for a, d in by_name.items()}
        return [by_name[min(acc, key=lambda a: (acc[a], a))]] if acc else []

    def _probe_result(self, ds: AttributeDataset) -> LensResult:
        """The plain lens result of ``ds``'s probe clips under the enrichment prompt (their
        records are on disk before the test clips run)."""
        assert self.enrich is not None
        probe = [s.id for s in self._probe_test(ds)[0]]
        return self.store.result(self.model_name, ds.task.name, self.enrich.prompt, ids=probe)

    def _plan_sweeps(self) -> dict[str, dict[str, Any]]:
        """Set each sweep up from the probe clips' records (ℓ̄, written to its setup file);
        the setups of the sweeps that have a layer to add, by attribute."""
        setups = {ds.task.name: self._enrich_setup(ds) for ds in self._sweep_attributes()}
        return {a: setup for a, setup in setups.items() if setup["source_layer"] is not None}

    def _run_enrich(self, setups: Mapping[str, Mapping[str, Any]]) -> None:
        """The rows of the planned sweeps (``setups``, by attribute) that the lens passes did
        not write (all of them when the main records were already on disk): one prefix pass
        per batch for every λ and seed."""
        from tqdm.auto import tqdm

        by_name = {d.task.name: d for d in self.datasets}
        for attr, setup in setups.items():
            ds = by_name[attr]
            plan = _SweepPlan.of(setup, self)
            lens = LogitLens(ds.task, positions=("last",))
            test = list(self._probe_test(ds)[1].samples)
            todo = _sweep_todo(plan.rows_path, _chunks(by_length(test), self.batch_size), plan.jobs)
            # A killed sweep resumes at its first incomplete batch.
            for chunk in tqdm(todo, desc=f"enrich {attr}", unit="batch", disable=not self.progress):
                ids = [s.id for s in chunk]
                batch = self._batch(chunk, ds.task.prompt(setup["prompt"]))
                plan.record(ids, lens.run_many(self.model, batch, plan.variants(ids), backend=self.backend))

    def _enrich_setup(self, ds: AttributeDataset) -> dict[str, Any]:
        """The sweep's setup for ``ds`` (ℓ̄ from the probe clips' wrong answers), written to
        its setup file."""
        cfg = self.enrich
        assert cfg is not None
        attr = ds.task.name
        rows_path, setup_path = self.store.enrich_paths(self.model_name, attr, cfg.prompt)
        probe, test = self._probe_test(ds)
        probe_res = self._probe_result(ds)
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
            warnings.warn(f"{attr}: {setup['note']}; enrichment skipped", stacklevel=2)
        else:
            setup["source_layer"] = select_enrich_layer(probe_res, gap=cfg.gap)
            setup["probe_info_wrong"] = probe_res.subset(wrong).info_scores("last").tolist()
        self._write_sweep_setup(setup_path, rows_path, setup)
        return setup

    def _write_sweep_setup(self, setup_path: Path, rows_path: Path, setup: dict[str, Any]) -> None:
        """Write the sweep's setup; rows recorded under a different setup are dropped."""
        if _sweep_changed(setup_path, setup) and rows_path.exists():
            self._say(f"{setup['attribute']} ({setup['prompt']}): the enrichment setup changed; "
                      "its sweep rows are recomputed")
            rows_path.unlink()
        rec.write_atomic(setup_path, _json(setup))

    # ------------------------------------------------------------------ reading
    def models(self) -> list[str]:
        return self.store.models()

    def result(
        self,
        attribute: str,
        prompt: str = "P3",
        intervention: str = "none",
        model: str | None = None,
    ) -> LensResult:
        """The stored lens result of one (attribute, prompt, intervention) of ``model``."""
        return self.store.result(model or self._only_model(), attribute, prompt, intervention)

    def _only_model(self) -> str:
        if self.model_name:
            return self.model_name
        models = self.store.models()
        if len(models) != 1:
            raise ValueError(f"records of several models {models}: pass model=")
        return models[0]

    def summary(self) -> pd.DataFrame:
        """Critical layer and accuracy per (model, attribute, prompt) of the plain run."""
        from .tables import summarize

        return summarize(
            (
                (k.model, k.attribute, k.prompt, self.store.result(k.model, k.attribute, k.prompt))
                for k in self.store.record_keys()
                if k.intervention == "none"
            ),
            alpha=self.alpha,
        )

    def _write_table(self, df: pd.DataFrame, name: str, index: bool) -> None:
        from .tables import to_markdown

        # Atomic: runs of other models into the same folder rewrite the same tables.
        folder = self.out / "tables"
        rec.write_atomic(folder / f"{name}.csv", df.to_csv(index=index))
        rec.write_atomic(folder / f"{name}.md", to_markdown(df, index=index, floatfmt=".4g") + "\n")

    def table2(self) -> pd.DataFrame:
        """Table II (see :func:`audiolens.study.tables.table2`), also written to
        ``out/tables/table2.{csv,md}``."""
        from .tables import table2

        df = table2(self.summary())
        self._write_table(df, "table2", index=True)
        return df

    def table3(self, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
        """Table III (see :func:`audiolens.study.tables.table3`), also written to
        ``out/tables/table3.{csv,md}``."""
        from .tables import table3

        df = table3(self.summary(), exclude=exclude)
        self._write_table(df, "table3", index=False)
        return df

    def figure(self, n: int) -> Path:
        """Draw Fig. ``n`` (2–5) from the records into ``out/figures/fig{n}.png``; its path."""
        from . import figures

        path = self.out / "figures" / f"fig{n}.png"
        with rec.replacing(path) as tmp:
            figures.draw(n, self.store, tmp)
        return path

    def knockout_table(self) -> pd.DataFrame:
        """Attention knockout from the records: per model, attribute, prompt, key span and
        window (``all`` = every block), the mean probability of the target among the labels at
        the answer token, plain and with the window blocked, and their difference. A large drop
        for ``audio`` and none for ``question`` says the answer reads the audio, not the text."""
        import pandas as pd

        rows = []
        for key in self.store.record_keys():
            if not key.intervention.startswith(KNOCKOUT):
                continue
            span, _, window = key.intervention[len(KNOCKOUT):].partition("_")
            knocked = self.store.result(key.model, key.attribute, key.prompt, key.intervention)
            plain = self.store.result(key.model, key.attribute, key.prompt, "none")
            p_plain, p_knocked = _target_probability(plain), _target_probability(knocked)
            rows.append({"model": key.model, "attribute": key.attribute, "prompt": key.prompt, "keys": span,
                         "window": window or "all", "n": len(knocked), "p_target": float(p_plain.mean()),
                         "p_target_knocked": float(p_knocked.mean()),
                         "delta": float((p_knocked - p_plain).mean())})
        df = pd.DataFrame(rows)
        if not df.empty:
            self._write_table(df, "knockout", index=False)
        return df

    def to_frame(self) -> pd.DataFrame:
        """Every record as one tidy table: ``model, attribute, prompt, intervention``, then one
        row per sample × position × layer × label as in :meth:`LensResult.to_frame`. Save it
        with :func:`audiolens.files.write_parquet` (or ``df.to_parquet``)."""
        from ..lenses.frames import lens_frame
        from .tables import over_records

        return over_records(self.store, lens_frame)

    def info_frame(self) -> pd.DataFrame:
        """Per record, position and layer: ``n``, ``n_correct`` and ``info_score`` (Eq. 2)."""
        from ..lenses.frames import info_frame
        from .tables import over_records

        return over_records(self.store, info_frame)


KNOCKOUT = "knockout_"


def knockout_interventions(n_layers: int, window: int) -> dict[str, list[Intervention]]:
    """``knockout_{keys}`` (every block) and ``knockout_{keys}_{start}-{end}`` (each window of
    ``window`` blocks) for the audio and the question: the answer token cannot read them there.

    Example:
        >>> sorted(knockout_interventions(4, 3))[:3]
        ['knockout_audio', 'knockout_audio_1-3', 'knockout_audio_2-4']
    """
    window = max(1, min(int(window), n_layers))
    out: dict[str, list[Intervention]] = {}
    for keys in ("audio", "question"):
        out[f"{KNOCKOUT}{keys}"] = [AudioMask(keys=keys)]
        for start in range(1, n_layers - window + 2):
            end = start + window - 1
            out[f"{KNOCKOUT}{keys}_{start}-{end}"] = [AudioMask(keys=keys, layers=range(start, end + 1))]
    return out


def _target_probability(result: LensResult):
    """Per sample, the target's probability among the labels at the last token and layer."""
    import torch

    p = torch.softmax(result.logits_at("last")[result.n_layers], -1)
    return p[torch.arange(len(result)), result.targets].numpy()


@dataclass
class _SweepPlan:
    """An enrichment sweep set up for one attribute (:meth:`Study._plan_sweeps`): its variants
    and rows for any of its test clips, whichever pass runs them."""

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
    def of(cls, setup: Mapping[str, Any], study: Study) -> _SweepPlan:
        attr, prompt, gap = setup["attribute"], setup["prompt"], setup["gap"]
        n, seeds = len(setup["test_ids"]), range(setup["seeds"])
        rows_path, _ = study.store.enrich_paths(study.model_name, attr, prompt)
        jobs = len(sweep_jobs(setup["scales"], seeds))
        return cls(
            prompt=prompt,
            source_layer=setup["source_layer"],
            scales=list(setup["scales"]),
            gap=gap,
            position={i: k for k, i in enumerate(setup["test_ids"])},
            draws={s: random_source_layers(s, n, study.model.n_layers, gap) for s in seeds},
            rows_path=rows_path,
            shard_path=lambda rank: study.store.enrich_shard_path(study.model_name, attr, prompt, rank),
            done=_complete_ids(rec.read_records(rows_path), jobs),
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

    def variants(self, ids: Sequence[str]) -> dict[tuple[float, int], list[Intervention]]:
        return sweep_variants(self.source_layer, self.scales, self._layers(ids), gap=self.gap)

    def record(self, ids: Sequence[str], results: Mapping[Any, LensResult], shard: int | None = None) -> None:
        """Append the rows of ``results`` (which hold every variant of :meth:`variants`)."""
        jobs = sweep_jobs(self.scales, list(self.draws))
        rows = sweep_records({job: results[job] for job in jobs}, self.source_layer, self._layers(ids))
        rec.append_records(self.rows_path if shard is None else self.shard_path(shard), rows)
        self.done.update(ids)


def by_length(samples: Sequence[Sample]) -> list[Sample]:
    """``samples`` from shortest to longest clip (ties in their given order), so that a batch
    holds clips of similar length and little padding."""
    return sorted(samples, key=lambda s: s.info().frames / s.info().sampling_rate)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _sweep_todo(path: Path, chunks: list[Sequence[Sample]], jobs: int) -> list[Sequence[Sample]]:
    """The sweep's batches still to run. A batch is done when each of its clips has all
    ``jobs`` rows; the rows of unfinished batches (and of an older per-λ layout) are dropped
    from the file so that those batches run again from scratch."""
    rec.repair(path)
    rows = rec.read_records(path)
    complete = _complete_ids(rows, jobs)
    todo = [c for c in chunks if any(s.id not in complete for s in c)]
    redo = {s.id for c in todo for s in c}
    keep = [r for r in rows if "id" in r and r["id"] not in redo]
    if len(keep) < len(rows):
        rec.write_records(path, keep)
    return todo


def _complete_ids(rows: Sequence[Mapping[str, Any]], jobs: int) -> set[str]:
    """The clips with all ``jobs`` of their sweep rows among ``rows``."""
    count = Counter(r.get("id") for r in rows)
    return {i for i, n in count.items() if n == jobs}


def _sweep_changed(path: Path, setup: Mapping[str, Any]) -> bool:
    """Whether the sweep set up at ``path`` differs from ``setup`` in what its rows depend on."""
    import json

    if not path.is_file():
        return False
    old = json.loads(path.read_text())
    keys = ("source_layer", "gap", "scales", "seeds", "test_ids", "prompt")
    return any(old.get(k) != setup.get(k) for k in keys)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "DEFAULT_ENRICH",
    "DEFAULT_SCALES",
    "POSITIONS",
    "EnrichConfig",
    "Study",
    "default_interventions",
    "model_label",
]
