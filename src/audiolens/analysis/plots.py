"""Figures of the analyses (matplotlib is imported only here, and only when a figure is asked)."""

from __future__ import annotations

import numpy as np


def _axes(ax, size=(6.0, 3.2)):
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, dpi=120, layout="constrained")
    return fig, fig.subplots()


def plot_knockout(result, ax=None):
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


def plot_dla(result, ax=None):
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


def plot_patch(result, ax=None):
    fig, ax = _axes(ax, size=(max(5.0, 0.6 * len(result.groups) + 2), 3.6))
    data = result.recovery.numpy()
    im = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
    ax.set_xticks(range(len(result.groups)), result.groups, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(result.layers)), result.layers)
    ax.set_ylabel("layer")
    ax.set_title(f"patching {result.what}: recovery of the clean answer", fontsize=10)
    fig.colorbar(im, ax=ax, label="recovery")
    return fig


def plot_token_lens(result, row: int = 0, ax=None):
    from .token_lens import seconds_ticks

    valid = result.positions[row] >= 0
    probs = result.probs[:, row][:, valid, 0].numpy()
    tokens = [[layer[row][j][0] for j in range(len(layer[row])) if bool(valid[j])] for layer in result.tokens]
    fig, ax = _axes(ax, size=(min(14.0, max(6.0, 0.35 * probs.shape[1] + 2)), max(3.0, 0.3 * probs.shape[0] + 1)))
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
