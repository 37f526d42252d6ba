"""Figs. 2–5 of the paper drawn from a study's records (PNG, Agg, no pyplot state).

Each figure is a grid with one row per model and one column per attribute (Fig. 5: one panel
per enrichment sweep). Every panel is ``PANEL_W × PANEL_H`` inches, plus ``EXTRA_H`` for the
title and legend, at ``DPI`` dots per inch, so a figure's pixel size follows from its grid.
This module imports matplotlib; ``import audiolens`` does not import this module.

Every information-score curve says how many clips it rests on (n, in the panel title) and
carries a shaded 95 % Wilson interval per layer; Fig. 2 adds each prompt format's critical layer
with its bootstrap interval. Lines that would coincide differ in marker and line style and are
shifted by ``OFFSET`` of the layer axis from one another. A subset of fewer than ``MIN_CLIPS``
clips is not drawn (its score moves in steps of 0.2 or more and its interval spans about half
of [0, 1]); the panel says so instead.

Example:
    >>> from audiolens.study.records import RecordStore
    >>> draw(2, RecordStore("results"), "results/figures/fig2.png")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..lenses.plots import (
    DPI,
    PANEL_H,
    PANEL_W,
    STYLES,
    curve,
    layer_axis,
    layer_hits,
    offsets,
    score_axis,
)
from ..lenses.result import LensResult
from ..metrics import WeakEvidence
from .enrichment import choice_caveat, probe_wrong
from .records import RecordError, RecordStore
from .sweep import SweepResult
from .tables import attribute_order

try:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
except ModuleNotFoundError as exc:  # matplotlib comes with the ``plot`` extra
    raise ModuleNotFoundError(
        "audiolens.study.figures needs matplotlib: pip install 'audiolens[plot]'", name=exc.name
    ) from exc

EXTRA_H = 0.9  # inches of title and legend below a figure's panels
PROMPT_COLORS = {"P1": "#1f77b4", "P2": "#ff7f0e", "P3": "#2ca02c"}
CORRECT, WRONG = "#2ca02c", "#d62728"
LAST, ATTRIBUTE, MASKED = "#e377c2", "#1f77b4", "#7f7f7f"
MIN_CLIPS = 5  # fewest clips a drawn subset (Fig. 3) may rest on
BAND = Patch(facecolor="0.6", alpha=0.35, label="95 % Wilson interval")
BAND_ALPHA = 0.15  # Fig. 5's band: its legend entry is drawn with the same colour and alpha
SELECTED_BAND = Patch(facecolor=CORRECT, alpha=BAND_ALPHA, label="ℓ̄: 95 % Wilson interval")
CRITICAL = Line2D(
    [], [], color="0.3", marker="|", ms=8, ls="-", label="critical layer, 95 % bootstrap interval"
)


def _grid(store: RecordStore) -> tuple[list[str], list[str]]:
    models = store.models()
    if not models:
        raise RecordError(f"no records under {store.root}: run the study first")
    attributes = attribute_order({a for m in models for a in store.attributes(m)})
    return models, attributes


def _figure(rows: int, cols: int, title: str, min_cols: int = 1) -> tuple[Figure, np.ndarray]:
    width = max(cols, min_cols) * PANEL_W
    fig = Figure(figsize=(width, rows * PANEL_H + EXTRA_H), dpi=DPI, layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    fig.suptitle(title, fontsize=11)
    return fig, axes


def _has(
    store: RecordStore, model: str, attribute: str, prompt: str, intervention: str = "none"
) -> bool:
    from .records import RecordKey

    # Any file of the key: a data-parallel run's shards count before they are merged.
    return bool(RecordKey(model, attribute, prompt, intervention).files(store.out))


def _panels(store: RecordStore, title: str, prompts: tuple[str, ...]) -> tuple[Figure, Iterator]:
    """A model × attribute grid and an iterator over its panels that have records.

    Yields ``(ax, model, attribute, n_layers, prompts found)``; panels with none of ``prompts``
    recorded say so and are skipped.
    """
    models, attributes = _grid(store)
    fig, axes = _figure(len(models), len(attributes), title)

    def panels() -> Iterator:
        for i, m in enumerate(models):
            n_layers = store.meta(m)["n_layers"]
            for j, a in enumerate(attributes):
                ax = axes[i, j]
                ax.set_title(f"{m} — {a}", fontsize=10)
                found = [p for p in prompts if _has(store, m, a, p)]
                if not found:
                    _empty(ax, "no records")
                    continue
                yield ax, m, a, n_layers, found

    return fig, panels()


def _note(ax, text: str, y: float, color: str = "black") -> None:
    """A note inside a panel, on a white box so that lines under it do not hide it."""
    ax.text(
        0.6, y, text, color=color, ha="center", va="center", transform=ax.transAxes, fontsize=8,
        bbox={"facecolor": "white", "edgecolor": color, "alpha": 0.9, "pad": 2},
    )


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig: Figure, extra: tuple[Any, ...] = (BAND,)) -> None:
    """One legend for the whole figure, below the panels (fig.axes includes twin axes), with
    ``extra`` proxy entries (the interval band) after the lines."""
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    for h in extra:
        handles.setdefault(h.get_label(), h)
    labels = list(handles)
    if not labels:
        return
    cols = _legend_columns(fig, labels)
    rows = -(-len(labels) // cols)
    # matplotlib fills a legend column by column; this order makes it read row by row.
    order = [r * cols + c for c in range(cols) for r in range(rows) if r * cols + c < len(labels)]
    fig.legend(
        [handles[labels[i]] for i in order],
        [labels[i] for i in order],
        loc="outside lower center",
        ncols=cols,
        fontsize=9,
    )


def _legend_columns(fig: Figure, labels: list[str]) -> int:
    """As many columns as fit the figure's width (about 0.075 in a character at 9 pt, plus
    0.6 in for each entry's handle and gap), in rows of equal length."""
    need = sum(0.6 + 0.075 * len(lab) for lab in labels)
    rows = int(np.ceil(need / (0.95 * fig.get_figwidth())))
    return int(np.ceil(len(labels) / max(1, rows)))


def fig2(store: RecordStore) -> Figure:
    """Information score at the last token per layer, for each prompt format, with the critical
    layer of each and its bootstrap interval near the bottom of the panel."""
    fig, panels = _panels(
        store, "Fig. 2 — information score at the last token per layer, by prompt format",
        ("P1", "P2", "P3"),
    )
    for ax, m, a, n_layers, prompts in panels:
        results = {p: store.result(m, a, p) for p in prompts}
        for k, ((p, res), dx) in enumerate(zip(results.items(), offsets(len(results), n_layers))):
            hits = layer_hits(res)
            curve(ax, hits, style=k, offset=dx, color=PROMPT_COLORS[p], label=p)
            _critical(ax, hits, len(res.labels), k, PROMPT_COLORS[p])
        score_axis(ax, n_layers, len(res.labels))
        ax.set_title(f"{m} — {a} (n = {_count(results)})", fontsize=10)
    _legend(fig, (BAND, CRITICAL))
    return fig


def _count(results: Mapping[str, LensResult]) -> str:
    """n of a panel's lines: one number, or each line's when a run is incomplete."""
    ns = {len(r) for r in results.values()}
    return str(ns.pop()) if len(ns) == 1 else "/".join(str(len(r)) for r in results.values())


def _critical(ax, hits: np.ndarray, n_labels: int, k: int, color: str) -> None:
    """The critical layer (Eq. 4) of ``hits`` as a marker with its bootstrap interval as a
    horizontal bar, the k-th row from the bottom of the panel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.UndefinedCriticalLayer)  # undefined: not drawn
        layer = metrics.critical_layer(hits.mean(axis=-1), n_labels)
    if np.isnan(layer):
        return
    lo, hi = metrics.critical_layer_interval(hits, n_labels)
    xerr = None if np.isnan(lo) else [[layer - lo], [hi - layer]]
    ax.errorbar(
        [layer], [0.04 + 0.06 * k], xerr=xerr, fmt=STYLES[k % len(STYLES)][0], ms=4,
        color=color, capsize=2, lw=1.2,
    )


def fig3(store: RecordStore, prompt: str = "P3") -> Figure:
    """Information score per layer for correctly (left axis) and wrongly (right axis) predicted
    samples, each with its n; a subset of fewer than ``MIN_CLIPS`` clips is not drawn."""
    fig, panels = _panels(
        store, f"Fig. 3 — information score at the last token ({prompt}): correct vs wrong predictions",
        (prompt,),
    )
    for ax, m, a, n_layers, _ in panels:
        res = store.result(m, a, prompt)
        right = ax.twinx()
        ok = res.correct
        hits = layer_hits(res)
        subsets = ((ok, ax, CORRECT, "correct"), (~ok, right, WRONG, "wrong"))
        for k, ((sub, axis, color, name), dx) in enumerate(zip(subsets, offsets(2, n_layers))):
            n = int(sub.sum())
            if n >= MIN_CLIPS:
                curve(axis, hits[:, sub], style=k, offset=dx, color=color,
                       label=f"{name} predictions")
            else:
                _note(axis, f"{name}: n = {n} < {MIN_CLIPS}, not drawn", 0.5 - 0.14 * k, color)
            axis.set_ylim(-0.02, 1.02)
        layer_axis(ax, n_layers, "score, correct")
        ax.set_title(f"{m} — {a} (n = {int(ok.sum())} correct, {int((~ok).sum())} wrong)",
                     fontsize=10)
        ax.set_ylabel("score, correct", color=CORRECT)
        ax.tick_params(axis="y", colors=CORRECT)
        right.set_ylabel("score, wrong", color=WRONG)
        right.tick_params(axis="y", colors=WRONG)
    _legend(fig)
    return fig


def fig4(store: RecordStore, prompt: str = "P3", masked: str = "audio_mask") -> Figure:
    """Information score per layer at the last token, the attribute token, and the last token
    with the audio masked in self-attention."""
    fig, panels = _panels(store, f"Fig. 4 — information score by token position ({prompt})", (prompt,))
    for ax, m, a, n_layers, _ in panels:
        res = store.result(m, a, prompt)
        lines = [(layer_hits(res, "last"), LAST, "last token"),
                 (layer_hits(res, "attribute"), ATTRIBUTE, "attribute token")]
        ns = {len(res)}
        if _has(store, m, a, prompt, masked):
            res_m = store.result(m, a, prompt, masked)
            lines.append((layer_hits(res_m, "last"), MASKED, "last token, audio masked"))
            ns.add(len(res_m))
        for k, ((hits, color, label), dx) in enumerate(zip(lines, offsets(len(lines), n_layers))):
            curve(ax, hits, style=k, offset=dx, color=color, label=label)
        score_axis(ax, n_layers, len(res.labels))
        n = "/".join(str(v) for v in sorted(ns))
        ax.set_title(f"{m} — {a} (n = {n})", fontsize=10)
    _legend(fig)
    return fig


def _probe_wrong(store: RecordStore, model: str, setup: Mapping) -> tuple[int, int]:
    """How many probe clips the model got wrong, and how many of those the lens gets right at
    ℓ̄ (the numerator of the score that chose it), from the plain run's records."""
    res = store.result(model, setup["attribute"], setup["prompt"])
    index = {i: k for k, i in enumerate(res.ids)}
    probe = res.subset([index[i] for i in setup["probe_ids"] if i in index])
    wrong = probe_wrong(store, model, setup)
    at_source = layer_hits(probe)[setup["source_layer"]]
    return int(wrong.sum()), int(at_source[wrong].sum())


def _clips(n: int, kind: str) -> str:
    return f"{n} {kind} clip{'' if n == 1 else 's'}"


def fig5(store: RecordStore) -> Figure:
    """Accuracy under Eq. 5 for each λ: the selected layer ℓ̄ (with a 95 % Wilson band over
    the test clips) vs a random layer (mean ± sd over seeds).

    Each panel gives n_probe, n_test and how many wrong probe clips ℓ̄ was chosen from. A
    choice that rests on no evidence (fewer than five wrong probe clips, or a score of 0 at
    every candidate layer, where ℓ̄ is a tie-break) is said in the panel and raises a
    :class:`WeakEvidence` warning: its sweep tests an arbitrary layer, not a finding.
    """
    sweeps = [(m, a, p) for m in store.models() for a, p in store.enrichments(m)]
    # At least two panels wide, so that the title and legend of a single sweep fit.
    fig, axes = _figure(
        1,
        max(1, len(sweeps)),
        "Fig. 5 — accuracy after adding layer ℓ̄ to layer ℓ̄ + gap (Eq. 5)",
        min_cols=2,
    )
    if not sweeps:
        _empty(axes[0, 0], "no enrichment sweep recorded")
    for ax, (m, a, p) in zip(axes.flat, sweeps):
        setup, rows = store.enrichment(m, a, p)
        sizes = f"n_probe = {setup['n_probe']}, n_test = {setup['n_test']}, gap {setup['gap']}"
        if setup["source_layer"] is None or not rows:
            ax.set_title(f"{m} — {a} ({p})\n{sizes}", fontsize=10)
            _empty(ax, setup.get("note") or "sweep not run yet")
            continue
        n_wrong, right_there = _probe_wrong(store, m, setup)
        source = setup["source_layer"]
        # n is the clips the rows hold: an interrupted sweep has fewer than its split.
        n_test = len({r["id"] for r in rows})
        if n_test != setup["n_test"]:
            sizes = sizes.replace(f"n_test = {setup['n_test']}", f"n_test = {n_test} of {setup['n_test']}")
        ax.set_title(
            f"{m} — {a} ({p}), {sizes}\nℓ̄ = {source} from {_clips(n_wrong, 'wrong probe')} "
            f"({right_there} right at ℓ̄)",
            fontsize=9,
        )
        caveat = choice_caveat(store, m, setup)
        if caveat:
            warnings.warn(f"Fig. 5, {m} — {a} ({p}): ℓ̄ rests on no evidence: {caveat}", WeakEvidence,
                          stacklevel=2)
            _note(ax, "ℓ̄ rests on no evidence:\n" + caveat.replace("; ", "\n").replace(": ", ":\n"), 0.2, WRONG)
        sweep = SweepResult.from_rows(rows, source)
        summary = sweep.summary()
        changed = sweep.changed_answers()
        top = changed[(changed["method"] == "selected") & (changed["scale"] == changed["scale"].max())]
        table = sweep.table[sweep.table["method"] == "selected"]
        n_top = int(table.loc[table["scale"] == top["scale"].item(), "n"].item())
        _note(ax, f"λ = {top['scale'].item():g}: ℓ̄ changes {int(top['changed'].item())} of "
              f"{n_top} answers ({int(top['fixed'].item())} fixed, "
              f"{int(top['broken'].item())} broken)", 0.05, CORRECT)
        sel = summary[summary["method"] == "selected"]
        rnd = summary[summary["method"] == "random"]
        dx = 0.01 * np.ptp(summary["scale"])  # the two methods side by side at each λ
        ax.errorbar(
            rnd["scale"] + dx,
            100 * rnd["mean"],
            yerr=100 * rnd["std"].fillna(0),
            marker=STYLES[1][0],
            ls=STYLES[1][1],
            ms=4,
            color=MASKED,
            capsize=3,
            label=f"random layer (mean ± sd, {setup['seeds']} seeds)",
        )
        n = table.set_index("scale")["n"].reindex(sel["scale"]).to_numpy()  # clips per λ
        k = np.round(sel["mean"].to_numpy() * n)
        lo, hi = metrics.wilson_interval(k, n)
        ax.fill_between(sel["scale"] - dx, 100 * lo, 100 * hi, color=CORRECT, alpha=BAND_ALPHA, lw=0)
        # Drawn last so that it stays visible where it coincides with the baseline (λ = 0).
        ax.plot(
            sel["scale"] - dx,
            100 * sel["mean"],
            marker=STYLES[0][0],
            ls=STYLES[0][1],
            ms=4,
            color=CORRECT,
            zorder=4,
            label="selected layer ℓ̄",
        )
        ax.set_xlabel("scale λ")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    _legend(fig, (SELECTED_BAND,))
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


FIGURES: dict[int, Callable[[RecordStore], Figure]] = {2: fig2, 3: fig3, 4: fig4, 5: fig5}


def build(n: int, store: RecordStore) -> Figure:
    """Fig. ``n`` (2, 3, 4 or 5) of ``store``'s records, as a matplotlib Figure."""
    try:
        make = FIGURES[int(n)]
    except (KeyError, ValueError):
        raise ValueError(
            f"no figure {n!r}; the paper's figures here are {sorted(FIGURES)}"
        ) from None
    return make(store)


def draw(n: int, store: RecordStore, path: str | Path) -> Path:
    """Draw Fig. ``n`` into the PNG ``path``; returns ``path``."""
    return _save(build(n, store), Path(path))
