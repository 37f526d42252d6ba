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
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.knockout import KNOCKOUT, knockout_interventions
from ..interventions import AudioMask, Intervention
from ..lenses.logit import LogitLens
from ..lenses.result import LensResult
from ..tasks import PROMPT_FORMATS
from . import records as rec
from .distributed import world
from .encoder_lens import EncoderLensPhase
from .enrichment import (
    DEFAULT_ENRICH,
    DEFAULT_SCALES,
    EnrichConfig,
    EnrichmentPhase,
    SweepPlan,
    by_length,
)
from .listening import ListeningConfig, ListeningPhase
from .probing import ProbePhase
from .report import Report
from .sweep import candidate_layers

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis.grounding import GroundingResult
    from ..analysis.heads import AudioHeads
    from ..batch import AudioBatch
    from ..data import AttributeDataset, Sample
    from ..hooked import HookedAudioLM
    from ..tasks import Prompt

POSITIONS = ("last", "attribute")


def default_interventions(model: HookedAudioLM | None = None) -> dict[str, list[Intervention]]:
    """RQ1–RQ3 read the plain model ("none"); RQ4 masks the audio at the last token: the
    spans the model's family names in ``masked_spans`` (e.g. DeSTA2's audio and transcript,
    paper footnote 4), the audio span alone without a model."""
    spans = model.architecture.masked_spans if model is not None else ("audio",)
    return {"none": [], "audio_mask": [AudioMask(keys=spans[0] if len(spans) == 1 else tuple(spans))]}


def model_label(model: HookedAudioLM) -> str:
    """A name for records: the checkpoint's name or path, else the HF class name."""
    config = getattr(model.hf_model, "config", None)
    name = str(getattr(config, "_name_or_path", "") or "").rstrip("/")
    return name.split("/")[-1] if name else type(model.hf_model).__name__


def hub_id(model: HookedAudioLM) -> str | None:
    """The hub id the model was loaded from (``org/name``), or None for a local folder or a
    model built in memory: two checkpoints with one name (``a/m``, ``b/m``) are told apart."""
    config = getattr(model.hf_model, "config", None)
    name = str(getattr(config, "_name_or_path", "") or "")
    return name if name and not Path(name).expanduser().exists() else None


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
        listening: run the listening analyses after the lens records (True, a
            :class:`~audiolens.study.listening.ListeningConfig` or its keyword arguments): per
            clip, every head's attention to the audio and effect of ablating it, and grounding
            under counterfactual audio, resumable (:meth:`listening`, :meth:`listening_frame`).
        log: where the run's notes go (what a resumed run found and reuses); default: standard
            error when ``progress`` is on.
        probes: also fit layer-wise linear probes per attribute (encoder and decoder layers,
            :func:`~audiolens.analysis.probes.run_probes`) after the lens passes, under the P3
            prompt (else the last format); per-fold predictions and tables are stored, never
            activations (:meth:`probe_table`, :meth:`probe_figure`).
        probe_positions, probe_folds: the probes' ``positions`` and ``folds``.
        probe_train: per attribute, clips to fit the probes on (then scored on the study's own
            clips, ``run_probes(held_out=...)``); attributes without one cross-validate.
        encoder_lens: also run the :class:`~audiolens.lenses.encoder.EncoderLens` per attribute
            (the LLM's answer when the audio encoder stops after each of its layers) on the
            study's clips under the probes' prompt, stored per clip and encoder layer
            (:meth:`encoder_lens_table`; drawn in :meth:`probe_figure`, rows in
            :meth:`to_frame`). A model without encoder layers (the demo model) skips it with
            a note.
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
        probes: bool = False,
        probe_positions: str = "last",
        probe_folds: int = 5,
        probe_train: Sequence[AttributeDataset] = (),
        encoder_lens: bool = False,
        listening: bool | ListeningConfig | Mapping[str, Any] | None = None,
    ):
        self.model = model
        self.probes = probes
        self.encoder_lens = encoder_lens
        self.probe_positions = probe_positions
        self.probe_folds = int(probe_folds)
        self.probe_train = {d.task.name: d for d in probe_train}
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
        self.listening_config = ListeningConfig.of(listening)
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

    @property
    def report(self) -> Report:
        """The study's :class:`~audiolens.study.report.Report`: tables, figures and frames from
        its records."""
        return Report(self.store, self.out, alpha=self.alpha)

    @property
    def _enrichment(self) -> EnrichmentPhase | None:
        if self.enrich is None or self.model is None:
            return None
        return EnrichmentPhase(
            self.enrich, self.store, self._name, self.datasets, prompts=self.prompts,
            seed=self.seed, n_layers=self.model.n_layers, say=self._say,
        )

    @property
    def _whole_model_prompt(self) -> str:
        """The prompt format of the probes and the encoder lens: P3, else the last one run."""
        return "P3" if "P3" in self.prompts else self.prompts[-1]

    @property
    def _probing(self) -> ProbePhase | None:
        if not self.probes or self.model is None:
            return None
        assert self.model_name is not None  # named from the model when there is one
        return ProbePhase(self.store, self.model_name, self.datasets, positions=self.probe_positions,
                          folds=self.probe_folds, seed=self.seed, prompt=self._whole_model_prompt, say=self._say,
                          train=self.probe_train)

    @property
    def _encoder_lensing(self) -> EncoderLensPhase | None:
        if not self.encoder_lens or self.model is None:
            return None
        assert self.model_name is not None
        return EncoderLensPhase(self.store, self.model_name, self.datasets, self._batch,
                                prompt=self._whole_model_prompt, say=self._say)

    # ------------------------------------------------------------------ running
    def _keys(self, attribute: str) -> list[rec.RecordKey]:
        task = next((d.task for d in self.datasets if d.task.name == attribute), None)
        return [
            rec.RecordKey(self._name, attribute, p, i)
            for p in self.prompts
            for i in self.interventions
            # a knockout of the question needs a prompt that asks one (P1 has none)
            if not (i.startswith(KNOCKOUT + "question") and task is not None and not task.prompt(p).question)
        ]

    def _write_meta(self) -> None:
        from ..labels import label_token_ids

        model = self._model
        self.store.write_meta(
            {
                "model": self.model_name,
                **({"checkpoint": ckpt} if (ckpt := hub_id(model)) else {}),
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

    @property
    def _model(self) -> HookedAudioLM:
        if self.model is None:
            raise ValueError("this study was loaded from disk; pass a model to run it")
        return self.model

    @property
    def _name(self) -> str:
        if self.model_name is None:
            raise ValueError("this study was loaded from disk; pass a model to run it")
        return self.model_name

    def _batch(self, samples: Sequence[Sample], prompt: Prompt, waves: dict[str, Any] | None = None) -> AudioBatch:
        """A model batch of ``samples`` under ``prompt``; ``waves`` caches loaded clips by id."""
        rate, max_seconds = self._model.sampling_rate, self._model.max_audio_seconds
        waves = {} if waves is None else waves
        for s in samples:
            if s.id not in waves:
                waves[s.id] = s.load(rate, max_seconds=max_seconds, truncate=self.truncate)
        return self._model.prepare(
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
                lock = self.store.lock(self._name, wait=wait, world_size=ranks.size)
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
            enrichment = self._enrichment
            phases = self._phases(enrichment)
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
                total=total, desc=desc, unit="row",
                disable=not (self.progress and ranks.is_main) or total == 0,  # (no empty bar)
            ) as bar:
                sweeps: dict[str, SweepPlan] = {}
                for k, phase in enumerate(phases):
                    for ds in self.datasets:
                        # Shortest clips first: a batch then pads little.
                        mine = by_length(ranks.shard(phase[ds.task.name]))
                        self._run_dataset(ds, mine, done, bar, shard, sweeps.get(ds.task.name))
                    if ranks.distributed:
                        ranks.barrier()  # every shard complete before rank 0 merges them
                        ranks.on_main(self._consolidate)
                    if k + 1 < len(phases):
                        assert enrichment is not None  # a second phase comes only with a sweep
                        setups = ranks.on_main(enrichment.plan)
                        sweeps = {a: enrichment.sweep(setup) for a, setup in setups.items()}
            if enrichment is not None:
                # Whatever the passes left (a resumed folder, a changed setup) runs here.
                ranks.on_main(lambda: enrichment.run(
                    setups, self._model, self._batch, batch_size=self.batch_size,
                    backend=self.backend, progress=self.progress))
            probing = self._probing
            if probing is not None:
                # A probe needs every clip of an attribute at once: rank 0 runs them all.
                ranks.on_main(lambda: probing.run(self._model, batch_size=self.batch_size,
                                                  truncate=self.truncate, progress=self.progress))
            lensing = self._encoder_lensing
            if lensing is not None:
                # Per attribute as a whole, like the probes: rank 0 runs it.
                ranks.on_main(lambda: lensing.run(self._model, batch_size=self.batch_size,
                                                  backend=self.backend, progress=self.progress))
            if self.listening_config is not None:
                listening = self._listening_phase(self.listening_config)
                ranks.on_main(lambda: listening.run(self._model, self.datasets, batch_size=self.batch_size,
                                                    truncate=self.truncate, progress=self.progress))
        return self

    def _consolidate(self) -> rec.Consolidation:
        total = rec.Consolidation()
        for ds in self.datasets:
            order = [s.id for s in ds.samples]
            for key in self._keys(ds.task.name):
                total += self.store.consolidate(key, order)
        for attr, prompt in self.store.enrichments(self._name):
            self.store.merge_enrich_shards(self._name, attr, prompt)
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
            folder = self.store.meta_path(self._name).parent
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
        bar: Any,
        shard: int | None,
        sweep: SweepPlan | None = None,
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
                wanted: dict[str, dict[Any, Sequence[Intervention]]] = {p: {k.intervention: self.interventions[k.intervention] for k in group if k.prompt == p}
                          for p in prompts}
                swept = sweep is not None and sweep.prompt in wanted and sweep.wants(ids)
                if swept and sweep is not None:
                    wanted[sweep.prompt] |= sweep.variants(ids)
                results = lens.run_formats(self._model, batches, {}, extra=wanted, backend=self.backend)
                if swept and sweep is not None:
                    sweep.record(ids, results[sweep.prompt], shard)
                for key in group:
                    rec.append_records(target[key], rec.sample_records(results[key.prompt][key.intervention]))
                    done[key].update(ids)
                    bar.update(len(ids))

    def _phases(self, enrichment: EnrichmentPhase | None) -> list[dict[str, list[Sample]]]:
        """The clips of each attribute in the order they run: with an enrichment sweep, every
        probe clip first, then the rest; else all in one go."""
        if enrichment is None:
            return [{d.task.name: list(d.samples) for d in self.datasets}]
        split = {d.task.name: enrichment.probe_test(d) for d in self.datasets}
        return [{a: list(p.samples) for a, (p, _) in split.items()},
                {a: list(t.samples) for a, (_, t) in split.items()}]

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
        """Critical layer and accuracy per (model, attribute, prompt) of the plain run
        (:meth:`Report.summary <audiolens.study.report.Report.summary>`)."""
        return self.report.summary()

    def table2(self) -> pd.DataFrame:
        """Table II (see :func:`audiolens.study.tables.table2`), also written to
        ``out/tables/table2.{csv,md}``."""
        return self.report.table2()

    def table3(self, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
        """Table III (see :func:`audiolens.study.tables.table3`), also written to
        ``out/tables/table3.{csv,md}``."""
        return self.report.table3(exclude=exclude)

    def figure(self, n: int) -> Path:
        """Draw Fig. ``n`` (2–5) from the records into ``out/figures/fig{n}.png``; its path."""
        return self.report.figure(n)

    def knockout_table(self) -> pd.DataFrame:
        """Attention knockout from the records (:meth:`Report.knockout_table
        <audiolens.study.report.Report.knockout_table>`): per model, attribute, prompt, key span
        and window, the target's mean probability among the labels at the answer token, plain
        and with the window blocked, and their difference."""
        return self.report.knockout_table()

    def _listening_phase(self, config: ListeningConfig | None = None) -> ListeningPhase:
        return ListeningPhase(config or self.listening_config or ListeningConfig(), self.store,
                              self._only_model(), self.seed, say=self._say)

    def listening(self, attribute: str, prompt: str = "P3",
                  model: str | None = None) -> tuple[AudioHeads, GroundingResult]:
        """The listening rows of one attribute as ``(AudioHeads, GroundingResult)``
        (:mod:`audiolens.study.listening`): ``.to_frame()`` and ``.plot()`` on each."""
        config = self.listening_config or ListeningConfig(prompt=prompt)
        phase = ListeningPhase(config, self.store, model or self._only_model(), self.seed)
        labels = self.store.meta(phase.model_name)["attributes"][attribute]["labels"]
        return phase.read(attribute, labels)

    def listening_frame(self, prompt: str = "P3", model: str | None = None) -> pd.DataFrame:
        """Per attribute, layer and head: audio share and ablation effect with intervals
        (``kind="heads"``), and per condition and layer: grounding with intervals and the
        listening rate (``kind="grounding"``), one tidy table."""
        import pandas as pd

        name = model or self._only_model()
        frames = []
        for attribute in self.store.attributes(name):
            try:
                heads, g = self.listening(attribute, prompt, name)
            except rec.RecordError:
                continue
            frames += [heads.to_frame().assign(kind="heads", attribute=attribute),
                       g.to_frame().assign(kind="grounding", attribute=attribute)]
        if not frames:
            raise rec.RecordError(f"no listening rows for {name}; run the study with listening=True")
        return pd.concat(frames, ignore_index=True)

    def listening_figure(self, attribute: str, prompt: str = "P3") -> Path:
        """The attribute's audio-head heatmap beside its grounding curves, drawn from the records
        into ``out/figures/listening_<attribute>.png``; its path."""
        from matplotlib.figure import Figure

        heads, g = self.listening(attribute, prompt)
        fig = Figure(figsize=(11, 3.8), dpi=120, layout="constrained")
        left, right = fig.subplots(1, 2)
        heads.plot(ax=left)
        g.plot(ax=right)
        path = self.out / "figures" / f"listening_{attribute}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        return path

    def to_frame(self) -> pd.DataFrame:
        """Every record as one tidy table, stored probe predictions and encoder lens included
        (:meth:`Report.to_frame <audiolens.study.report.Report.to_frame>`)."""
        return self.report.to_frame()

    def probe_table(self) -> pd.DataFrame:
        """The stored probes per model, attribute and layer (:meth:`Report.probe_table
        <audiolens.study.report.Report.probe_table>`), also written to
        ``out/tables/probes.{csv,md}``."""
        return self.report.probe_table()

    def probe_figure(self, attribute: str) -> Path:
        """Draw ``out/figures/probes_{attribute}.png``: probe, control and logit lens per layer,
        and the stored encoder lens when there is one (:meth:`Report.probe_figure
        <audiolens.study.report.Report.probe_figure>`)."""
        return self.report.probe_figure(attribute, model=self.model_name)

    def encoder_lens_table(self) -> pd.DataFrame:
        """The stored encoder lens per model, attribute and encoder layer (:meth:`Report.encoder_lens_table
        <audiolens.study.report.Report.encoder_lens_table>`), also written to
        ``out/tables/encoder_lens.{csv,md}``."""
        return self.report.encoder_lens_table()

    def info_frame(self) -> pd.DataFrame:
        """Per record, position and layer: ``n``, ``n_correct`` and ``info_score`` (Eq. 2)."""
        return self.report.info_frame()


__all__ = [
    "DEFAULT_ENRICH",
    "DEFAULT_SCALES",
    "POSITIONS",
    "EnrichConfig",
    "Study",
    "default_interventions",
    "model_label",
]
