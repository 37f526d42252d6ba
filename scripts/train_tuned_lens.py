"""Train the tuned lens shipped with the demo model (``audiolens.models.demo_tuned_lens()``).

Translators are fitted on espeak-ng clips of the *train* split (gender and language tracks)
under every SAKURA prompt format; a held-out share of the clips measures KL before and after
training, which is written with the lens (``tuned_lens.json``) and printed.

Example:
    python scripts/train_tuned_lens.py --steps 400
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import audiolens as al
from audiolens.data.synth import generate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-label", type=int, default=6, help="clips per label and track")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "src/audiolens/models/demo/tuned_lens")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    model = al.models.demo()
    clips = [u.waveform[: 3 * 16000] for track in ("gender", "language")
             for u in generate(track, args.per_label, seed=args.seed, split="train")]
    prompts = [al.sakura_task(t).prompt(f) for t in ("gender", "language") for f in ("P1", "P2", "P3")]
    lens = al.TunedLens.train(model, clips, prompts=prompts, steps=args.steps, lr=args.lr, seed=args.seed)
    lens.save(args.out)
    before = np.array(lens.history["kl_before"]["val"])
    after = np.array(lens.history["kl_after"]["val"])
    print("held-out KL per layer 0..L-1 (logit lens -> tuned lens):")
    for layer, (b, a) in enumerate(zip(before, after)):
        print(f"  layer {layer}: {b:.3f} -> {a:.3f}")
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
