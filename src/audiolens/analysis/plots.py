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


def plot_probes(result: Any, encoder_lens: Any = None, title: str | None = None, ax: Any = None) -> Any:
    """Encoder layers, then decoder layers, on one axis: probe accuracy (what is *present*),
    its shuffled-label control, the logit lens's information score (what the head *reads*)
    and, when given, an encoder lens's score (what the LLM can *use* when the encoder stops
    there), each with its 95 % interval, and the chance line.

    ``result`` is a :class:`~audiolens.analysis.probes.ProbeResult` or its table;
    ``encoder_lens`` anything with ``info_scores()`` per encoder layer and a length (clips).
    The title always ends with the design (positions, clips, folds and grouping); ``title``
    replaces its first words.

    Example:
        >>> fig = plot_probes(al.run_probes(model, dataset))  # doctest: +SKIP
    """
    table = getattr(result, "table", result)
    enc = table[table["stack"] == "encoder"].sort_values("layer")
    dec = table[table["stack"] == "decoder"].sort_values("layer")
    shift = len(enc)  # decoder layer ℓ sits at x = len(encoder rows) + ℓ
    x = np.r_[enc["layer"].to_numpy(), shift + dec["layer"].to_numpy()].astype(float)
    rows = table.loc[list(enc.index) + list(dec.index)]
    fig, ax = _axes(ax, size=(max(6.0, 0.35 * len(x) + 2.5), 3.6))
    for col, low, high, color, marker, ls, label in (
        ("accuracy", "ci_low", "ci_high", "C0", "o", "-", "probe (present)"),
        ("control_accuracy", "control_ci_low", "control_ci_high", "0.5", "s", ":", "probe control (shuffled labels)"),
    ):
        ax.fill_between(x, rows[low], rows[high], color=color, alpha=0.15, lw=0)
        ax.plot(x, rows[col], marker=marker, ms=4, ls=ls, lw=1.3, color=color, label=label)
    if dec["info_score"].notna().any():
        xd = shift + dec["layer"].to_numpy()
        ax.fill_between(xd, dec["info_ci_low"], dec["info_ci_high"], color="C1", alpha=0.15, lw=0)
        ax.plot(xd, dec["info_score"], marker="^", ms=4, ls="--", lw=1.3, color="C1",
                label="logit lens (read by the head)")
    if encoder_lens is not None:
        from ..metrics import wilson_interval

        score = np.asarray(encoder_lens.info_scores(), dtype=float)
        if len(score) != shift:
            raise ValueError(f"the encoder lens has {len(score)} encoder layers but the probe table {shift} "
                             "encoder rows: draw them of the same model")
        n = len(encoder_lens)
        lo, hi = wilson_interval(np.round(score * n), n)
        xe = np.arange(len(score))
        ax.fill_between(xe, lo, hi, color="C2", alpha=0.15, lw=0)
        ax.plot(xe, score, marker="D", ms=4, ls="-.", lw=1.3, color="C2", label="encoder lens (usable by the LLM)")
    chance = float(table["chance"].iloc[0])
    ax.axhline(chance, color="black", ls="--", lw=0.8, label=f"chance 1/|Y| = {chance:.2f}")
    if shift:
        ax.axvline(shift - 0.5, color="0.6", lw=0.8)
    ticks = [f"e{int(v)}" for v in enc["layer"]] + [str(int(v)) for v in dec["layer"]]
    ax.set_xticks(x, ticks, fontsize=7)
    ax.set_xlabel("encoder layer (e·), then decoder layer ℓ (0 = embeddings)" if shift else
                  "decoder layer ℓ (0 = embeddings)")
    ax.set_ylabel("accuracy / information score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    design = table["grouped_by"].iloc[0]
    how = "held-out clips" if design == "held-out" else f"{table['folds'].iloc[0]}-fold CV, grouped by {design}"
    # The design (clips, folds, grouping) is always said: a title given names the rest.
    ax.set_title(f"{title or 'present vs read'} at '{table['positions'].iloc[0]}'\n"
                 f"(n = {int(table['n'].iloc[0])}, {how}; 95 % Wilson bands)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return fig
