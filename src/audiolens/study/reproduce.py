"""``audiolens reproduce``: the paper's study end to end — records, Tables II–III, Figs. 2–5
and ``report.html``.

With a checkpoint and a SAKURA checkout it runs the paper's setting; with no arguments it runs a
small built-in setting that needs no download: the demo model when the package ships one (else
the random-weight tiny Qwen2-Audio) on gender and language clips synthesized by espeak-ng into a
cache folder.

Under ``torchrun --nproc-per-node N -m audiolens reproduce ...`` (or ``accelerate launch``) the
study is data parallel: each rank studies its share of the clips, rank 0 merges the record shards
and writes the tables and figures (see :meth:`audiolens.study.runner.Study.run`).

Example:
    >>> out = reproduce()  # doctest: +SKIP
    >>> out = reproduce("Qwen/Qwen2-Audio-7B-Instruct", "/data/SAKURA", "qwen2/")  # doctest: +SKIP
    >>> out.figures[2]  # doctest: +SKIP
    PosixPath('qwen2/figures/fig2.png')
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..audio import AudioNote
from ..errors import StepSkipped
from .distributed import World, local_device, world
from .enrichment import DEFAULT_SCALES
from .html_report import write_html_report
from .runner import Study, model_label
from .tables import attribute_order

if TYPE_CHECKING:
    import pandas as pd

    from ..data import AttributeDataset
    from ..hooked import HookedAudioLM
    from .records import RecordStore

DEFAULT_PER_LABEL = 16  # synthesized clips per label: 32 gender + 128 language clips
PAPER_GAP = 5
SYNTH_ATTRIBUTES = ("gender", "language")


@dataclass
class Reproduction:
    """What :func:`reproduce` wrote: the study, its summary and the table and figure paths
    (on rank 0; the other ranks of a data-parallel run get the study alone)."""

    study: Study
    summary: pd.DataFrame | None
    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[int | str, Path] = field(default_factory=dict)
    probe_figures: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None  #: report.html: the summary, tables, figures and wrong answers


def cache_dir() -> Path:
    """Where synthesized clips are kept: ``$AUDIOLENS_CACHE`` or ``~/.cache/audiolens``."""
    return Path(os.environ.get("AUDIOLENS_CACHE") or Path.home() / ".cache" / "audiolens")


def demo_model() -> HookedAudioLM | None:
    """The packaged demo model (``audiolens.models.demo()``), or None when this install lacks
    its checkpoint."""
    from ..models import demo

    try:
        return demo()
    except FileNotFoundError:
        return None


def load_model(
    model: str | Path | HookedAudioLM | None, seed: int = 0
) -> tuple[HookedAudioLM, str]:
    """The model to study and its name: a :class:`HookedAudioLM` as is, a checkpoint id or
    path through ``from_pretrained`` (on this rank's GPU when there is one), or (None) the demo
    model, else the tiny random one."""
    from ..hooked import HookedAudioLM
    from ..models import tiny_qwen2_audio

    if isinstance(model, HookedAudioLM):
        return model, model_label(model)
    if model is not None:
        import torch

        # A real checkpoint wants the GPU when there is one; bfloat16 halves its memory.
        device = local_device()  # each rank of a data-parallel run its own GPU
        loaded = HookedAudioLM.from_pretrained(
            str(model), device=device, torch_dtype=torch.bfloat16 if device else None
        )
        return loaded, str(model).rstrip("/").split("/")[-1]
    demo = demo_model()
    if demo is not None:
        return demo, "demo"
    # Eight layers leave room for Eq. 5's gap; the weights are random, so expect chance scores.
    return tiny_qwen2_audio(seed=seed, n_layers=8), "tiny-qwen2-audio"


def load_data(
    data: str | Path | Sequence[AttributeDataset] | None,
    attributes: Sequence[str] | None = None,
    n_per_label: int = DEFAULT_PER_LABEL,
    seed: int = 0,
    split: Literal["train", "validation", "test"] = "test",
) -> list[AttributeDataset]:
    """Data sets to study: given data sets as is, a SAKURA root (every track present, or
    ``attributes``), or (None) espeak-ng clips of ``split`` synthesized once into
    :func:`cache_dir` (``"test"``: sentences and voices a demo model was never trained on nor chosen by)."""
    from ..data import AttributeDataset, DataError, load_sakura
    from ..data.dataset import existing_folder
    from ..data.sakura import find_track_dir
    from ..data.synth import METADATA_EXTRA, plan, synthesize
    from ..tasks import SAKURA_TASKS

    if data is not None and not isinstance(data, (str, Path)):
        sets = list(data)
        if not all(isinstance(d, AttributeDataset) for d in sets):
            raise TypeError("data must be a SAKURA folder or a list of AttributeDataset")
        return [d for d in sets if attributes is None or d.task.name in attributes]
    if data is None:
        attributes = list(attributes or SYNTH_ATTRIBUTES)
        bad = sorted(set(attributes) - set(SYNTH_ATTRIBUTES))
        if bad:
            raise DataError(
                f"only {list(SYNTH_ATTRIBUTES)} can be synthesized, not {bad}; pass data="
            )
        # The folder name carries a digest of what would be synthesized, so clips cached before
        # an edit of the sentence lists or voices are never mistaken for the current ones.
        plans = [plan(a, n_per_label, seed, split) for a in SYNTH_ATTRIBUTES]
        digest = zlib.crc32(repr((plans, METADATA_EXTRA)).encode())  # the columns written too
        root = cache_dir() / f"synth-n{n_per_label}-seed{seed}-{digest:08x}"
        missing = [
            a for a in attributes if not (root / "data" / a.capitalize() / "metadata.csv").is_file()
        ]
        if missing:
            # The held-out test split: sentences and voices a demo model never trained on.
            synthesize(root, missing, n_per_label=n_per_label, seed=seed, split=split)
        return [load_sakura(root, a) for a in attributes]
    existing_folder(data)
    if attributes is None:
        attributes = []
        for a in SAKURA_TASKS:
            try:
                find_track_dir(data, a)
            except ValueError:
                continue
            attributes.append(a)
        if not attributes:
            raise DataError(f"no SAKURA track under {data}")
    return [load_sakura(data, a) for a in attributes]


def reproduce(
    model: str | Path | HookedAudioLM | None = None,
    data: str | Path | Sequence[AttributeDataset] | None = None,
    out: str | Path = "results/",
    attributes: Sequence[str] | None = None,
    prompts: Sequence[str] = ("P1", "P2", "P3"),
    batch_size: int = 8,
    n_per_label: int = DEFAULT_PER_LABEL,
    seed: int = 0,
    *,
    n_probe: int = 100,
    scales: Sequence[float] = DEFAULT_SCALES,
    threads: int | None = None,
    wait: float = 0.0,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
    whole_model: bool = False,
    listening: bool = False,
) -> Reproduction:
    """Run the study, write Tables II–III (CSV + Markdown) and Figs. 2–5, print a summary.

    Resumable: run it again with the same ``out`` and only missing records are computed.
    Clips longer than the model's audio window are cut (the paper's clips all fit Qwen2-Audio's
    30 s window; the tiny model's is 3 s). ``threads`` sets torch's CPU threads for the run;
    by default one for the built-in models, whose matrices are too small to share out.
    ``wait``: seconds to wait when another run holds the folder (else it stops with
    "folder busy").
    ``whole_model``: also fit layer-wise probes per attribute (every encoder and decoder layer;
    ``Study(probes=True)``; on synthesized clips fitted on the training split and scored on the
    studied clips, else 4-fold cross-validation grouped by speaker) and run the encoder lens
    (``Study(encoder_lens=True)``; skipped with a note on a model without encoder layers),
    write ``tables/probes.{csv,md}`` (and ``tables/encoder_lens.{csv,md}``) and draw
    ``figures/probes_{attribute}.png`` (probe, control, logit lens and encoder lens per layer).
    ``listening``: also record audio heads and grounding per clip
    (:mod:`audiolens.study.listening`) and draw ``figures/listening_<attribute>.png``.
    """
    if threads is None and model is None:
        threads = 1
    with torch_threads(threads), world() as ranks:
        return _run(model, data, out, attributes, prompts, batch_size, n_per_label, seed,
                    n_probe, scales, wait, progress, echo, ranks, whole_model, listening)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: leave as is), then restore."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(model: str | Path | HookedAudioLM | None, data: str | Path | Sequence[AttributeDataset] | None,
         out: str | Path, attributes: Sequence[str] | None, prompts: Sequence[str], batch_size: int,
         n_per_label: int, seed: int, n_probe: int, scales: Sequence[float], wait: float, progress: bool,
         echo: Callable[[str], None] | None, ranks: World, whole_model: bool = False,
         listening: bool = False) -> Reproduction:
    say = (echo if ranks.is_main else None) or (lambda _: None)
    # Data first, so that a missing espeak-ng fails fast; rank 0 first, so that clips missing
    # from the cache are synthesized once, then the other ranks read them.
    datasets: list[AttributeDataset] = []
    ranks.on_main(lambda: datasets.extend(load_data(data, attributes, n_per_label, seed)))
    if not ranks.is_main:
        datasets = load_data(data, attributes, n_per_label, seed)
    # Probes on synthesized clips are fitted on the training split's voices and sentences and
    # scored on the studied (held-out) clips, as the demo model itself is scored.
    probe_train: list[AttributeDataset] = []
    if whole_model and data is None:
        ranks.on_main(lambda: probe_train.extend(load_data(None, attributes, n_per_label, seed, split="train")))
    hooked, name = load_model(model, seed)
    # The paper's gap leaves 27 of 32 layers as candidate sources; on a shallow model keep at
    # least half the depth as candidates, or the random-layer baseline has nothing to choose.
    gap = min(PAPER_GAP, max(1, hooked.n_layers // 2))
    if gap != PAPER_GAP:
        say(
            f"note: {name} has {hooked.n_layers} layers, "
            f"so Eq. 5 uses a gap of {gap}, not {PAPER_GAP}"
        )
    study = Study(
        hooked,
        datasets,
        prompts=prompts,
        batch_size=batch_size,
        out=out,
        model_name=name,
        seed=seed,
        enrich={"n_probe": n_probe, "scales": scales, "gap": gap, "prompt": prompts[-1]},
        truncate=True,
        progress=progress,
        log=say,
        # The synthesized test split has four voices per attribute: folds grouped by speaker.
        probes=whole_model,
        probe_folds=4,
        probe_train=probe_train,
        encoder_lens=whole_model,
        listening={"prompt": prompts[-1]} if listening else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioNote)  # cutting is asked for; one note below says so
        study.run(wait=wait)
    if not ranks.is_main:
        return Reproduction(study, None)
    tables = {
        f"table{n}.{ext}": study.out / "tables" / f"table{n}.{ext}"
        for n in (2, 3)
        for ext in ("csv", "md")
    }
    study.table2()
    table3 = study.table3(exclude=["gender"])
    figures: dict[int | str, Path] = {n: p for n, p in draw_figures(study).items()}
    if listening and importlib.util.find_spec("matplotlib") is not None:
        figures |= {f"listening_{d.task.name}": study.listening_figure(d.task.name, prompts[-1]) for d in datasets}
    summary = study.summary()
    text = format_summary(study, summary, table3)
    say(text)
    probe_figures: dict[str, Path] = {}
    if whole_model:
        probes = study.probe_table()
        tables.update({f"probes.{ext}": study.out / "tables" / f"probes.{ext}" for ext in ("csv", "md")})
        say(format_probes(probes))
        text += "\n" + format_probes(probes)
        encoder = study.encoder_lens_table()
        if not encoder.empty:
            tables.update({f"encoder_lens.{ext}": study.out / "tables" / f"encoder_lens.{ext}" for ext in ("csv", "md")})
            say(format_encoder_lens(encoder))
            text += "\n" + format_encoder_lens(encoder)
        if importlib.util.find_spec("matplotlib") is not None:
            probe_figures = {d.task.name: study.probe_figure(d.task.name) for d in datasets}
    report = write_html_report(study, text)
    say("wrote " + ", ".join(str(p) for p in [*tables.values(), *figures.values(), *probe_figures.values(),
                                               report]))
    return Reproduction(study, summary, tables, figures, probe_figures, report)


def format_probes(table: pd.DataFrame) -> str:
    """One line per attribute: where the probe's interval first clears its control's, its best
    layer, and the last layer's probe against the logit lens (the model's own answer)."""
    lines = ["layer-wise probes (held-out accuracy; control: shuffled labels):"]
    for attribute, t in table.groupby("attribute", sort=False):
        design = t["grouped_by"].iloc[0]
        how = ("fitted on training voices, scored on these clips" if design == "held-out"
               else f"{int(t['folds'].iloc[0])} folds grouped by {design}")
        above = t[t["ci_low"] > t["control_ci_high"]]
        first = f"{above['stack'].iloc[0]} {int(above['layer'].iloc[0])}" if len(above) else "none"
        best = t.loc[t["accuracy"].idxmax()]
        last = t.iloc[-1]
        lines.append(
            f"  {attribute} ({how}): "
            f"interval clear of the control's from {first}; best {best['stack']} {int(best['layer'])} "
            f"({best['accuracy']:.2f}); last layer probe {last['accuracy']:.2f} vs logit lens "
            f"{last['info_score']:.2f}, control {last['control_accuracy']:.2f}")
    return "\n".join(lines)


def format_encoder_lens(table: pd.DataFrame) -> str:
    """One line per attribute: the LLM's accuracy when the encoder stops after each layer."""
    lines = ["encoder lens (the LLM's answer when the encoder stops after layer e; e = all is the plain run):"]
    for attribute, t in table.groupby("attribute", sort=False):
        scores = ", ".join(f"e{int(r.encoder_layer)} {r.info_score:.2f}" for r in t.itertuples())
        lines.append(f"  {attribute} (n = {int(t['n'].iloc[0])}): {scores}")
    return "\n".join(lines)


def draw_figures(study: Study) -> dict[int, Path]:
    """Figs. 2–5 of ``study``: none, with a warning, where matplotlib (the ``plot`` extra) is
    not installed; the records and tables stay, and a rerun with it draws them.

    Example:
        >>> draw_figures(study)[4]  # doctest: +SKIP
        PosixPath('results/figures/fig4.png')
    """
    if importlib.util.find_spec("matplotlib") is None:
        warnings.warn("figures skipped: matplotlib is not installed "
                      "(pip install 'audiolens[plot]')", StepSkipped, stacklevel=2)
        return {}
    return {n: study.figure(n) for n in (2, 3, 4, 5)}


def format_summary(study: Study, summary: pd.DataFrame, table3: pd.DataFrame) -> str:
    """A few lines per model and attribute: per prompt format, the information score per layer
    (last token), the critical layer, the accuracy and the accuracy with the audio masked at
    the answer token (RQ4); the enrichment sweep's outcome (RQ5, Eq. 5) and whether its ℓ̄
    rests on any evidence; then Table III."""
    import math

    from .records import RecordError

    lines = []
    for model in study.models():
        meta = study.store.meta(model)
        lines.append(f"== {model} ({meta['n_layers']} layers) ==")
        sweeps = dict(study.store.enrichments(model))
        for attr in attribute_order(meta["attributes"]):
            rows = summary[(summary["model"] == model) & (summary["attribute"] == attr)]
            if rows.empty:
                continue
            labels = meta["attributes"][attr]["labels"]
            lines.append(f"{attr}: {int(rows['n'].iloc[0])} clips, chance {1 / len(labels):.2f}")
            for _, r in rows.iterrows():
                info = study.result(attr, r["prompt"], model=model).info_scores("last")
                layer = (
                    "n/a (no layer above (1+α)/|Y|)"
                    if math.isnan(r["critical_layer"])
                    else f"{r['critical_layer']:.2f}"
                )
                try:
                    masked = study.result(attr, r["prompt"], "audio_mask", model=model).accuracy()
                    masked_text = f", audio masked {100 * masked:.1f}%"
                except RecordError:  # a study run without the masking
                    masked_text = ""
                lines.append(f"  {r['prompt']}  I per layer: {' '.join(f'{v:.2f}' for v in info)}")
                lines.append(f"      critical layer {layer}, accuracy {100 * r['accuracy']:.1f}%{masked_text}")
            if attr in sweeps:
                lines += enrichment_lines(study.store, model, attr, sweeps[attr])
            elif sweeps:
                lines.append("  enrichment: not run on this attribute (it runs on the one answered "
                             "worst on its probe clips)")
    for _, r in table3.iterrows():
        lines.append(
            f"Table III {r['model']} ({r['subset']}, n = {r['n']}): "
            f"r = {r['pearson_r']:.3f}, p = {r['p_value']:.3g}"
        )
    return "\n".join(lines)


def enrichment_lines(store: RecordStore, model: str, attribute: str, prompt: str) -> list[str]:
    """The enrichment sweep of one attribute in a few lines: accuracy per λ with ℓ̄ and with a
    random layer, the answers ℓ̄ changed, fixed and broken, and a caveat when ℓ̄ rests on no
    evidence (the sweep then adds an arbitrary layer and shows nothing about ℓ̄)."""
    import unicodedata

    from .enrichment import choice_caveat
    from .sweep import SweepResult

    setup, rows = store.enrichment(model, attribute, prompt)
    head = f"  enrichment ({prompt}, {setup['n_test']} test clips)"
    if setup["source_layer"] is None or not rows:
        return [f"{head}: {setup.get('note') or 'not run yet'}"]
    source = setup["source_layer"]
    sweep = SweepResult.from_rows(rows, source)
    acc = sweep.summary().set_index(["method", "scale"])["mean"]
    changed = sweep.changed_answers()
    changed = changed[changed["method"] == "selected"].set_index("scale")
    scales = sorted(changed.index)
    table = [("λ", [f"{s:g}" for s in scales]),
             (f"accuracy, ℓ̄ = {source}", [f"{100 * acc['selected', s]:.1f}%" for s in scales])]
    if "random" in acc.index.get_level_values(0):
        table.append((f"accuracy, random ({setup['seeds']} seeds)",
                      [f"{100 * acc['random', s]:.1f}%" for s in scales]))
    table.append(("ℓ̄: changed/fixed/broken",
                  [f"{int(c.changed)}/{int(c.fixed)}/{int(c.broken)}" for c in changed.loc[scales].itertuples()]))
    width = 2 + max(len(cell) for _, cells in table for cell in cells)

    def row(name: str, cells: list[str]) -> str:
        shown = sum(not unicodedata.combining(c) for c in name)  # ("ℓ̄" is two code points)
        return "      " + name + " " * (28 - shown) + "".join(c.rjust(width) for c in cells)

    lines = [f"{head}: add layer ℓ̄ = {source} to layer {source + setup['gap']}, scaled by λ"]
    lines += [row(name, cells) for name, cells in table]
    caveat = choice_caveat(store, model, setup)
    if caveat:
        lines.append(f"      ℓ̄ rests on no evidence ({caveat}): the sweep tests an arbitrary layer, "
                     "not the information score's choice")
    return lines


__all__ = ["DEFAULT_PER_LABEL", "Reproduction", "cache_dir", "load_data", "load_model", "reproduce"]
