"""The study runner: every (model, attribute, prompt format, intervention) of the paper, on disk.

``Study(model, datasets).run()`` runs the logit lens batch by batch and appends each batch's
per-sample records to JSON Lines files (see :mod:`audiolens.records`) as it goes, so an
interrupted run picks up where it stopped. Tables and figures are computed from the records
alone: ``Study.load(out)`` re-analyses a finished run without the model.

Under ``torchrun`` / ``accelerate launch`` the same ``run()`` is data parallel: each rank takes
its share of the clips and writes its own record shards, and rank 0 merges them (see
:mod:`audiolens.distributed`). One run at a time writes a model's records into a folder.

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
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import records as rec
from .distributed import world
from .enrich import candidate_layers, enrich_sweep, select_enrich_layer
from .interventions import AudioMask, Intervention
from .lens import LensResult, LogitLens
from .tasks import PROMPT_FORMATS

if TYPE_CHECKING:
    import pandas as pd

    from .data import AttributeDataset
    from .hooked import HookedAudioLM

POSITIONS = ("last", "attribute")
DEFAULT_SCALES = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_ENRICH = MappingProxyType({"n_probe": 100, "scales": DEFAULT_SCALES, "seeds": 5})


def default_interventions() -> dict[str, list[Intervention]]:
    """RQ1–RQ3 read the plain model ("none"); RQ4 masks the audio at the last token."""
    return {"none": [], "audio_mask": [AudioMask()]}


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
    ):
        self.model = model
        self.datasets = list(datasets)
        self.prompts = list(prompts)
        self.batch_size = int(batch_size)
        self.out = Path(out)
        self.seed = seed
        self.interventions = {
            k: list(v) for k, v in (interventions or default_interventions()).items()
        }
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
        <audiolens.records.RecordStore.verify>`): duplicated ids raise, truncated lines and
        missing samples warn, naming the file."""
        study = cls(None, out=out)
        if not study.store.models():
            raise rec.RecordError(f"no study records under {Path(out) / 'records'}")
        study.store.verify()
        return study

    # ------------------------------------------------------------------ running
    def _keys(self, attribute: str) -> list[rec.RecordKey]:
        return [
            rec.RecordKey(self.model_name, attribute, p, i)
            for p in self.prompts
            for i in self.interventions
        ]

    def _write_meta(self) -> None:
        from .labels import label_token_ids

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
        fe = self.model.processor.feature_extractor
        rate, max_seconds = fe.sampling_rate, fe.n_samples / fe.sampling_rate
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
        :class:`~audiolens.records.FolderBusy` ("folder busy: another run (pid, host) holds
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
            mine = {ds.task.name: ranks.shard(ds.samples) for ds in self.datasets}
            total = sum(
                s.id not in done[key]
                for ds in self.datasets
                for key in self._keys(ds.task.name)
                for s in mine[ds.task.name]
            )
            shard = ranks.rank if ranks.distributed else None
            desc = f"lens {self.model_name}" + (
                f" (rank 0 of {ranks.size})" if ranks.distributed else ""
            )
            with tqdm(
                total=total, desc=desc, unit="row", disable=not (self.progress and ranks.is_main)
            ) as bar:
                for ds in self.datasets:
                    self._run_dataset(ds, mine[ds.task.name], done, bar, shard)
            if ranks.distributed:
                ranks.barrier()  # every shard complete before rank 0 merges them
                ranks.on_main(self._consolidate)
            if self.enrich is not None:
                ranks.on_main(self._run_enrich)
        return self

    def _consolidate(self) -> rec.Consolidation:
        total = rec.Consolidation()
        for ds in self.datasets:
            order = [s.id for s in ds.samples]
            for key in self._keys(ds.task.name):
                total += self.store.consolidate(key, order)
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
    ) -> None:
        """Records of ``samples`` (this rank's share of ``ds``) into the main files, or into
        rank ``shard``'s files in a data-parallel run."""
        lens = LogitLens(ds.task, positions=POSITIONS)
        keys = self._keys(ds.task.name)
        target = {k: k.path(self.out) if shard is None else k.shard_path(self.out, shard) for k in keys}
        # Fixed chunks of the share: a resumed run sees the same batches as an uninterrupted one.
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start : start + self.batch_size]
            waves: dict[str, Any] = {}  # each clip is read once per chunk, not once per run
            for prompt in self.prompts:
                # Interventions missing the same rows share one prepared batch.
                groups: dict[tuple[str, ...], list[rec.RecordKey]] = {}
                for key in (k for k in keys if k.prompt == prompt):
                    ids = tuple(s.id for s in chunk if s.id not in done[key])
                    if ids:
                        groups.setdefault(ids, []).append(key)
                for ids, group in groups.items():
                    missing = [s for s in chunk if s.id in set(ids)]
                    batch = self._batch(missing, ds.task.prompt(prompt), waves)
                    # Interventions at the last token share one prefix pass (run_many).
                    results = lens.run_many(
                        self.model, batch, {k.intervention: self.interventions[k.intervention] for k in group}
                    )
                    for key in group:
                        rec.append_records(target[key], rec.sample_records(results[key.intervention]))
                        done[key].update(ids)
                        bar.update(len(ids))

    def _run_enrich(self) -> None:
        cfg = self.enrich
        assert cfg is not None
        if cfg.prompt not in self.prompts:
            raise ValueError(
                f"enrichment prompt {cfg.prompt} is not among the study's prompts {self.prompts}"
            )
        by_name = {d.task.name: d for d in self.datasets}
        attributes = (
            list(cfg.attributes) if cfg.attributes is not None else self._hardest(cfg.prompt)
        )
        for attr in attributes:
            if attr not in by_name:
                raise ValueError(f"enrichment attribute {attr!r} has no data set in this study")
            self._enrich_one(by_name[attr], cfg)

    def _hardest(self, prompt: str) -> list[str]:
        acc = {d.task.name: self.result(d.task.name, prompt).accuracy() for d in self.datasets}
        return [min(acc, key=lambda a: (acc[a], a))] if acc else []

    def _enrich_one(self, ds: AttributeDataset, cfg: EnrichConfig) -> None:
        from tqdm.auto import tqdm

        attr = ds.task.name
        rows_path, setup_path = self.store.enrich_paths(self.model_name, attr, cfg.prompt)
        # A probe split that would leave less than half to test falls back to the paper's ratio
        # (100 of 500: a fifth).
        n_probe = cfg.n_probe if 2 * cfg.n_probe <= len(ds) else max(1, len(ds) // 5)
        probe, test = ds.split(n_probe, seed=self.seed)
        full = self.result(attr, cfg.prompt)
        index = {i: k for k, i in enumerate(full.ids)}
        probe_res = full.subset([index[s.id] for s in probe])
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
            rec.write_atomic(setup_path, _json(setup))
            return
        setup["source_layer"] = select_enrich_layer(probe_res, gap=cfg.gap)
        setup["probe_info_wrong"] = probe_res.subset(wrong).info_scores("last").tolist()
        rec.write_atomic(setup_path, _json(setup))

        done = _complete_scales(rows_path, 1 + cfg.seeds)
        todo = [s for s in cfg.scales if float(s) not in done]
        if not todo:
            return
        lens = LogitLens(ds.task, positions=("last",))
        prompt = ds.task.prompt(cfg.prompt)
        batches = [
            self._batch(test.samples[i : i + self.batch_size], prompt)
            for i in range(0, len(test), self.batch_size)
        ]
        # One sweep call per λ: the random layers depend only on (seed, batch), so the rows equal
        # one call over every λ, and a killed sweep resumes at the first missing λ.
        for scale in tqdm(todo, desc=f"enrich {attr}", unit="λ", disable=not self.progress):
            sweep = enrich_sweep(
                self.model,
                batches,
                lens,
                setup["source_layer"],
                [scale],
                random_baseline_seeds=cfg.seeds,
                gap=cfg.gap,
                progress=False,
            )
            rows = [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in sweep.table.to_dict("records")
            ]
            rec.append_records(rows_path, rows)

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
        """Table II (see :func:`audiolens.tables.table2`), also written to
        ``out/tables/table2.{csv,md}``."""
        from .tables import table2

        df = table2(self.summary())
        self._write_table(df, "table2", index=True)
        return df

    def table3(self, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
        """Table III (see :func:`audiolens.tables.table3`), also written to
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

    def to_frame(self) -> pd.DataFrame:
        """Every record as one tidy table: ``model, attribute, prompt, intervention``, then one
        row per sample × position × layer × label as in :meth:`LensResult.to_frame`. Save it
        with :func:`audiolens.frames.write_parquet` (or ``df.to_parquet``)."""
        from .frames import lens_frame, over_records

        return over_records(self.store, lens_frame)

    def info_frame(self) -> pd.DataFrame:
        """Per record, position and layer: ``n``, ``n_correct`` and ``info_score`` (Eq. 2)."""
        from .frames import info_frame, over_records

        return over_records(self.store, info_frame)


def _complete_scales(path: Path, rows_per_scale: int) -> set[float]:
    """The λ values with all their sweep rows on disk; rows of a λ cut short by a kill are
    dropped from the file so that the λ is run again from scratch."""
    rec.repair(path)
    rows = rec.read_records(path)
    count: dict[float, int] = {}
    for r in rows:
        count[float(r["scale"])] = count.get(float(r["scale"]), 0) + 1
    complete = {s for s, n in count.items() if n == rows_per_scale}
    if len(complete) < len(count):
        rec.write_records(path, [r for r in rows if float(r["scale"]) in complete])
    return complete


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
