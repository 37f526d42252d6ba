"""Figures of the analyses (matplotlib is imported only here, and only when a figure is asked)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lenses.plots import axes as _axes


def plot_knockout(result: Any, ax: Any = None) -> Any:
    fig, ax = _axes(ax)
    mean = result.summary()
    ends = [s + result.window - 1 for s in result.starts]
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(result.starts, mean, marker="o", ms=4)
    ax.set_xticks(result.starts, [f"{s}-{e}" for s, e in zip(result.starts, ends)], fontsize=7)
    ax.set_xlabel(f"blocked blocks (window of {result.window})")
    ax.set_ylabel("Δ p(target)")
    ax.set_title(f"attention knockout: last token → {result.keys} (n = {len(result.ids)})", fontsize=10)
    return fig


def plot_dla(result: Any, ax: Any = None) -> Any:
    fig, ax = _axes(ax)
    parts = result.by_layer()
    layers = np.arange(1, len(parts["attn"]) + 1)
    ax.bar(layers - 0.2, parts["attn"], width=0.4, label="attention")
    ax.bar(layers + 0.2, parts["mlp"], width=0.4, label="MLP")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xticks(layers)
    ax.set_xlabel("block")
    ax.set_ylabel("share of logit gap")
    ax.set_title(f"direct logit attribution (embedding {parts['embed'][0]:+.2f}, "
                 f"mean gap {float(result.gap.mean()):.2f}, n = {len(result.ids)})", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_patch(result: Any, ax: Any = None) -> Any:
    fig, ax = _axes(ax, size=(max(5.0, 0.6 * len(result.groups) + 2), 3.6))
    data = result.recovery.numpy()
    im = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
    ax.set_xticks(range(len(result.groups)), result.groups, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(result.layers)), result.layers)
    ax.set_ylabel("layer")
    ax.set_title(f"patching {result.what}: recovery of the clean answer", fontsize=10)
    fig.colorbar(im, ax=ax, label="recovery")
    return fig
