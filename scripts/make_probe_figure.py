"""Draw the figure of docs/probes.md: probes versus the logit lens on the demo model.

The probe is fitted on espeak-ng clips of the training voices and sentences and scored on
held-out ones (test-split voices and sentences), as the demo model itself is scored.

Example:
    python scripts/make_probe_figure.py
"""

from __future__ import annotations

from pathlib import Path

import audiolens as al
from audiolens.data import synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs/img"


def main() -> None:
    model = al.models.demo()
    for track in ("gender",):
        train = synthetic_dataset(track, 16, seed=0, split="train")
        test = synthetic_dataset(track, 16, seed=0, split="test")
        res = al.run_probes(model, train, "last", held_out=test, truncate=True)
        cols = ["stack", "layer", "accuracy", "ci_low", "ci_high", "control_accuracy", "info_score"]
        print(res.table[cols].to_string(index=False))
        print(f"model's own accuracy: {res.lens.accuracy():.3f}")
        res.plot().savefig(IMG / f"probes_{track}.png")


if __name__ == "__main__":
    main()
