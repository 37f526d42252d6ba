"""Figures of the listening analyses: attention by span, audio heads, grounding (matplotlib is
imported only here, and only when a figure is asked)."""

from __future__ import annotations

import numpy as np

from ..lenses.plots import axes as _axes


def _heatmap(ax, fig, data: np.ndarray, layers, title: str, label: str, cmap: str = "viridis",
             vmin: float | None = None, vmax: float | None = None):
    im = ax.imshow(data, aspect="auto", cmap=cmap, origin="lower", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(data.shape[1]))
    ax.set_yticks(range(len(layers)), layers)
    ax.set_xlabel("head")
    ax.set_ylabel("block")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=label)
    return fig


def plot_span_attention(result, span: str = "audio", ax=None):
    fig, ax = _axes(ax, size=(max(4.0, 0.4 * result.heads + 2), 3.6))
    return _heatmap(ax, fig, result.mean(span), result.layers,
                    f"attention at {result.queries} on {span} (n = {len(result)})", "share", vmin=0, vmax=1)


def plot_audio_heads(result, ax=None, what: str = "effect"):
    fig, ax = _axes(ax, size=(max(4.0, 0.4 * result.heads + 2), 3.6))
    if what == "effect":
        data = result.effect.mean(-1).numpy()
        lim = float(np.nanmax(np.abs(data))) or 1.0
        return _heatmap(ax, fig, data, result.layers,
                        f"drop in target logit gap when a head is ablated ({result.mode}, n = {len(result.ids)})",
                        "Δ gap", cmap="RdBu_r", vmin=-lim, vmax=lim)
    return _heatmap(ax, fig, result.attention.mean(-1).numpy(), result.layers,
                    f"attention on audio at the last token (n = {len(result.ids)})", "share", vmin=0, vmax=1)


def plot_grounding(result, ax=None):
    fig, ax = _axes(ax)
    frame = result.to_frame()
    ax.axhline(0, color="0.6", lw=0.8)
    for cond, part in frame.groupby("condition", sort=False):
        ax.plot(part["layer"], part["grounding"], marker="o", ms=3, label=cond)
        ax.fill_between(part["layer"], part["low"], part["high"], alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("I(real) − I(counterfactual)")
    rates = ", ".join(f"{c} {r:.2f}" for c, r in result.listening_rate().items())
    ax.set_title(f"grounding (n = {len(result.ids)}); listening rate: {rates}", fontsize=9)
    ax.legend(fontsize=8)
    return fig
