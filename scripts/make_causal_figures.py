"""Draw the figures of docs/causal.md from the shipped demo model and espeak-ng test clips.

Example:
    python scripts/make_causal_figures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

import audiolens as al
from audiolens.data.synth import generate

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs/img"


def main() -> None:
    torch.manual_seed(0)
    model = al.models.demo()
    task = al.sakura_task("gender")
    utts = list(generate("gender", n_per_label=12, seed=0, split="test"))
    clips = [u.waveform[: 3 * 16000] for u in utts]
    labels = [u.label for u in utts]
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=labels)

    al.TokenLens(top_k=3).run(model, batch.subset([0]), positions=["question", "prefix"]).plot(row=0) \
        .savefig(IMG / "causal_token_lens.png")
    al.direct_logit_attribution(model, batch, task).plot().savefig(IMG / "causal_dla.png")
    al.attention_knockout(model, batch, task, keys="audio", window=2).plot().savefig(IMG / "causal_knockout.png")
    corrupt = model.prepare(al.corrupt_clips(clips, "noise", snr_db=-10), 16000, task.prompt("P3"), labels=labels)
    al.patch(model, batch, corrupt, task, what="resid").plot().savefig(IMG / "causal_patch.png")

    # Tuned vs logit lens on held-out clips of both tracks.
    tuned = al.models.demo_tuned_lens(model)
    fig = Figure(figsize=(9, 3.2), dpi=120, layout="constrained")
    ax_kl, ax_g, ax_l = fig.subplots(1, 3)
    before = np.array(tuned.history["kl_before"]["val"])
    after = np.array(tuned.history["kl_after"]["val"])
    layers = np.arange(len(before))
    ax_kl.plot(layers, before, marker="o", label="logit lens")
    ax_kl.plot(layers, after, marker="s", ls="--", label="tuned lens")
    ax_kl.set(xlabel="layer", ylabel="KL(final ‖ layer), held out", title="KL to the final distribution")
    ax_kl.set_xticks(layers)
    ax_kl.legend(fontsize=8)
    print("| layer | " + " | ".join(str(i) for i in layers) + " |")
    print("|---|" + "---|" * len(layers))
    print("| KL, logit lens | " + " | ".join(f"{v:.3f}" for v in before) + " |")
    print("| KL, tuned lens | " + " | ".join(f"{v:.3f}" for v in after) + " |")
    for ax, track in ((ax_g, "gender"), (ax_l, "language")):
        t = al.sakura_task(track)
        us = list(generate(track, n_per_label=12 if track == "gender" else 4, seed=1, split="test"))
        b = model.prepare([u.waveform[: 3 * 16000] for u in us], 16000, t.prompt("P3"), labels=[u.label for u in us])
        for name, lens, style in (("logit lens", al.LogitLens(t), "-o"), ("tuned lens", tuned, "--s")):
            scores = lens.run(model, b).info_scores()
            ax.plot(np.arange(len(scores)), scores, style, ms=4, label=name)
            print(f"{track} info score, {name}: " + " ".join(f"{v:.2f}" for v in scores) + f" (n = {len(b)})")
        ax.axhline(1 / len(t.labels), color="0.6", lw=0.8, ls=":")
        ax.set(xlabel="layer", ylabel="information score", title=f"{track}, P3 (n = {len(b)})", ylim=(0, 1.05))
        ax.set_xticks(np.arange(model.n_layers + 1))
        ax.legend(fontsize=8)
    fig.savefig(IMG / "causal_tuned_lens.png")


if __name__ == "__main__":
    main()
