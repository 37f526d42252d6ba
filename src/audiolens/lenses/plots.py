"""Figures of lens results: information score per layer, token-lens heatmaps, and the drawing
primitives the study's paper figures share (layer axis, curves with Wilson bands, chance line).

This module imports matplotlib (the ``plot`` extra); result types import it only when a plot is
asked.

Example:
    >>> fig = plot_info_scores({"plain": res, "audio masked": masked})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import metrics

try:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
except ModuleNotFoundError as exc:  # matplotlib comes with the ``plot`` extra
    raise ModuleNotFoundError(
        "audiolens plots need matplotlib: pip install 'audiolens[plot]'", name=exc.name
    ) from exc

PANEL_W, PANEL_H, DPI = 3.6, 2.8, 100
# Marker and line style of the k-th line of a panel, so that coinciding lines stay apart.
STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))
# Shift between neighbouring lines of a panel, as a fraction of the layer axis (so the same few
# pixels at any depth); a display shift only, the data sit on integer layers.
OFFSET = 0.012
PAD = 0.4  # layers of room either side of the layer axis, for the shifted outer lines


def axes(ax: Any = None, size: tuple[float, float] = (6.0, 3.2)) -> tuple[Figure, Any]:
    """``ax`` and its figure, or a new figure of ``size`` inches with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, dpi=120, layout="constrained")
    return fig, fig.subplots()


def layer_axis(ax, n_layers: int, ylabel: str = "information score") -> None:
    ax.set_xlabel("layer ℓ (0 = embeddings)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(-PAD, n_layers + PAD)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def offsets(k: int, n_layers: int) -> list[float]:
    """Shifts in layers of ``k`` lines on a layer axis 0..``n_layers``, centred on the true
    layer."""
    step = OFFSET * (n_layers + 2 * PAD)
    return [step * (i - (k - 1) / 2) for i in range(k)]


def curve(ax, hits: np.ndarray, *, style: int, offset: float, color: str, label: str) -> None:
    """Information score per layer of ``hits`` (layers × clips) with its Wilson band."""
    n = hits.shape[-1]
    k = hits.sum(axis=-1)
    lo, hi = metrics.wilson_interval(k, n)
    x = np.arange(hits.shape[0]) + offset
    marker, ls = STYLES[style % len(STYLES)]
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
    ax.plot(x, k / n, marker=marker, ms=4, ls=ls, lw=1.3, color=color, label=label)


def layer_hits(res: Any, position: str = "last") -> np.ndarray:
    """Per layer and clip: is the argmax label the target? (layers × clips)"""
    return metrics.hits(res.logits_at(position), res.targets)


def score_axis(ax, n_layers: int, n_labels: int) -> None:
    """Layer axis, information scores on 0..1 and the chance line 1/|Y|."""
    layer_axis(ax, n_layers)
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(1 / n_labels, color="black", ls="--", lw=0.8, label="chance 1/|Y|")


def plot_info_scores(
    results: Any,
    position: str = "last",
    title: str | None = None,
    ax=None,
) -> Figure:
    """Information score per layer of one or several lens results, with a 95 % Wilson band,
    the clip count n of each line and the chance line.

    A mapping plots one line per name; a ``"name@position"`` key reads that position instead
    (e.g. ``{"last": res, "attribute@attribute": res, "masked": masked}`` draws Fig. 4's three
    lines for one model). Pass ``ax`` to draw into an existing matplotlib axes.

    Example:
        >>> fig = plot_info_scores({"plain": res, "audio masked": masked})  # doctest: +SKIP
        >>> fig.savefig("scores.png")  # doctest: +SKIP
    """
    named = dict(results) if isinstance(results, Mapping) else {"": results}
    if ax is None:
        fig = Figure(figsize=(PANEL_W * 1.5, PANEL_H * 1.3), dpi=DPI, layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    first = next(iter(named.values()))
    colors = [f"C{i}" for i in range(len(named))]
    for k, ((name, res), dx) in enumerate(zip(named.items(), offsets(len(named), first.n_layers))):
        label, _, pos = name.partition("@")
        pos = pos or position
        curve(ax, layer_hits(res, pos), style=k, offset=dx, color=colors[k],
               label=f"{label or f'{pos} token'} (n = {len(res)})")
    score_axis(ax, first.n_layers, len(first.labels))
    ax.set_title(
        title or "information score per layer (95 % Wilson band)",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    return fig


def plot_token_lens(result: Any, row: int = 0, ax: Any = None) -> Any:
    valid = result.positions[row] >= 0
    probs = result.probs[:, row][:, valid, 0].numpy()
    tokens = [[layer[row][j][0] for j in range(len(layer[row])) if bool(valid[j])] for layer in result.tokens]
    fig, ax = axes(ax, size=(min(14.0, max(6.0, 0.35 * probs.shape[1] + 2)), max(3.0, 0.3 * probs.shape[0] + 1)))
    im = ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower")
    if probs.shape[1] <= 60:
        for layer in range(probs.shape[0]):
            for j in range(probs.shape[1]):
                ax.text(j, layer, tokens[layer][j].replace("Ġ", "␣")[:6], ha="center", va="center",
                        fontsize=5, color="w" if probs[layer, j] < 0.5 else "k")
    if result.seconds is not None and np.isfinite(result.seconds[row][valid].numpy()).all():
        ticks, labels = seconds_ticks(result.seconds[row][valid].numpy())
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("audio time (s)")
    elif result.inputs and probs.shape[1] <= 60:
        names = [t for t, v in zip(result.inputs[row], valid.tolist()) if v]
        ax.set_xticks(range(len(names)), [t.replace("Ġ", "␣") for t in names], rotation=90, fontsize=6)
        ax.set_xlabel("input token")
    else:
        ax.set_xlabel("position")
    ax.set_yticks(range(probs.shape[0]))
    ax.set_ylabel("layer")
    ax.set_title(f"token lens, row {result.ids[row]}: top-1 token and its probability", fontsize=10)
    fig.colorbar(im, ax=ax, label="p(top-1)")
    return fig


def seconds_ticks(seconds: np.ndarray, step: float = 0.5) -> tuple[list[int], list[str]]:
    """Tick positions (indices) and labels every ``step`` seconds for a row of seconds."""
    ticks, labels, next_mark = [], [], 0.0
    for j, s in enumerate(seconds):
        if np.isfinite(s) and s >= next_mark - 1e-9:
            ticks.append(j)
            labels.append(f"{s:.1f}")
            next_mark = s + step
    return ticks, labels
