"""Figs. 2–5 of the paper drawn from a study's records (PNG, Agg, no pyplot state).

Each figure is a grid with one row per model and one column per attribute (Fig. 5: one panel
per enrichment sweep). Every panel is ``PANEL_W × PANEL_H`` inches, plus ``EXTRA_H`` for the
title and legend, at ``DPI`` dots per inch, so a figure's pixel size follows from its grid.
This module imports matplotlib; ``import audiolens`` does not import this module.

Example:
    >>> from audiolens.records import RecordStore
    >>> draw(2, RecordStore("results"), "results/figures/fig2.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from .enrich import SweepResult
from .lens import LensResult
from .records import RecordError, RecordStore
from .tables import attribute_order

try:
    from matplotlib.figure import Figure
except ModuleNotFoundError as exc:  # matplotlib comes with the ``plot`` extra
    raise ModuleNotFoundError(
        "audiolens.figures needs matplotlib: pip install 'audiolens[plot]'", name=exc.name
    ) from exc

PANEL_W, PANEL_H, EXTRA_H, DPI = 3.6, 2.8, 0.9, 100
PROMPT_COLORS = {"P1": "#1f77b4", "P2": "#ff7f0e", "P3": "#2ca02c"}
CORRECT, WRONG = "#2ca02c", "#d62728"
LAST, ATTRIBUTE, MASKED = "#e377c2", "#1f77b4", "#7f7f7f"


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

    return RecordKey(model, attribute, prompt, intervention).path(store.out).is_file()


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


def _layer_axis(ax, n_layers: int, ylabel: str = "information score") -> None:
    ax.set_xlabel("layer ℓ (0 = embeddings)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, n_layers)
    ax.grid(alpha=0.3)


def _score_axis(ax, n_layers: int, n_labels: int) -> None:
    """Layer axis, information scores on 0..1 and the chance line 1/|Y|."""
    _layer_axis(ax, n_layers)
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(1 / n_labels, color="black", ls="--", lw=0.8, label="chance 1/|Y|")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig: Figure) -> None:
    """One legend for the whole figure, below the panels (fig.axes includes twin axes)."""
    handles = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = list(handles)
    if labels:
        fig.legend(
            [handles[k] for k in labels],
            labels,
            loc="outside lower center",
            ncols=len(labels),
            fontsize=9,
        )


def plot_info_scores(
    results: LensResult | Mapping[str, LensResult],
    position: str = "last",
    title: str | None = None,
    ax=None,
) -> Figure:
    """Information score per layer of one or several lens results, with the chance line.

    A mapping plots one line per name; a ``"name@position"`` key reads that position instead
    (e.g. ``{"last": res, "attribute@attribute": res, "masked": masked}`` draws Fig. 4's three
    lines for one model). Pass ``ax`` to draw into an existing matplotlib axes.

    Example:
        >>> fig = plot_info_scores({"plain": res, "audio masked": masked})  # doctest: +SKIP
        >>> fig.savefig("scores.png")  # doctest: +SKIP
    """
    named = {"": results} if isinstance(results, LensResult) else dict(results)
    if ax is None:
        fig = Figure(figsize=(PANEL_W * 1.5, PANEL_H * 1.3), dpi=DPI, layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    first = next(iter(named.values()))
    for name, res in named.items():
        label, _, pos = name.partition("@")
        pos = pos or position
        ax.plot(np.arange(res.n_layers + 1), res.info_scores(pos), marker="o", ms=3,
                label=label or f"{pos} token")
    _score_axis(ax, first.n_layers, len(first.labels))
    ax.set_title(title or f"information score per layer ({len(first)} samples)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def fig2(store: RecordStore) -> Figure:
    """Information score at the last token per layer, for each prompt format."""
    fig, panels = _panels(
        store, "Fig. 2 — information score at the last token per layer, by prompt format",
        ("P1", "P2", "P3"),
    )
    for ax, m, a, n_layers, prompts in panels:
        for p in prompts:
            res = store.result(m, a, p)
            ax.plot(
                range(n_layers + 1),
                res.info_scores("last"),
                marker=".",
                color=PROMPT_COLORS[p],
                label=p,
            )
        _score_axis(ax, n_layers, len(res.labels))
    _legend(fig)
    return fig


def fig3(store: RecordStore, prompt: str = "P3") -> Figure:
    """Information score per layer for correctly (left axis) and wrongly (right axis) predicted
    samples."""
    fig, panels = _panels(
        store, f"Fig. 3 — information score at the last token ({prompt}): correct vs wrong predictions",
        (prompt,),
    )
    for ax, m, a, n_layers, _ in panels:
        res = store.result(m, a, prompt)
        right = ax.twinx()
        ok = res.correct
        for sub, axis, color, name in (
            (ok, ax, CORRECT, "correct"),
            (~ok, right, WRONG, "wrong"),
        ):
            if sub.any():
                axis.plot(
                    range(n_layers + 1),
                    res.subset(sub).info_scores("last"),
                    marker=".",
                    color=color,
                    label=f"{name} predictions",
                )
            else:
                axis.text(
                    0.5,
                    0.05 if name == "correct" else 0.95,
                    f"no {name} predictions",
                    color=color,
                    ha="center",
                    va="center",
                    transform=axis.transAxes,
                    fontsize=8,
                )
            axis.set_ylim(-0.02, 1.02)
        _layer_axis(ax, n_layers, "score, correct")
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
        x = range(n_layers + 1)
        ax.plot(x, res.info_scores("last"), marker=".", color=LAST, label="last token")
        ax.plot(
            x,
            res.info_scores("attribute"),
            marker=".",
            color=ATTRIBUTE,
            label="attribute token",
        )
        if _has(store, m, a, prompt, masked):
            res_m = store.result(m, a, prompt, masked)
            ax.plot(
                x,
                res_m.info_scores("last"),
                marker=".",
                color=MASKED,
                label="last token, audio masked",
            )
        _score_axis(ax, n_layers, len(res.labels))
    _legend(fig)
    return fig


def fig5(store: RecordStore) -> Figure:
    """Accuracy under Eq. 5 for each λ: the selected layer ℓ̄ vs a random layer (mean ± sd)."""
    import pandas as pd

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
        layer = "" if setup["source_layer"] is None else f", ℓ̄ = {setup['source_layer']}"
        ax.set_title(
            f"{m} — {a} ({p})\nprobe {setup['n_probe']} / test {setup['n_test']}{layer}, "
            f"gap {setup['gap']}",
            fontsize=10,
        )
        if setup["source_layer"] is None or not rows:
            _empty(ax, setup.get("note") or "sweep not run yet")
            continue
        summary = SweepResult(pd.DataFrame(rows), setup["source_layer"]).summary()
        sel = summary[summary["method"] == "selected"]
        rnd = summary[summary["method"] == "random"]
        ax.errorbar(
            rnd["scale"],
            100 * rnd["mean"],
            yerr=100 * rnd["std"].fillna(0),
            marker="s",
            color=MASKED,
            capsize=3,
            label=f"random layer (mean ± sd, {setup['seeds']} seeds)",
        )
        # Drawn last so that it stays visible where it coincides with the baseline (λ = 0).
        ax.plot(
            sel["scale"],
            100 * sel["mean"],
            marker="o",
            ms=4,
            color=CORRECT,
            zorder=4,
            label="selected layer ℓ̄",
        )
        ax.set_xlabel("scale λ")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    _legend(fig)
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
