"""Measure the listening analyses on the shipped demo model: the numbers docs/listening.md states.

For gender (12 test clips per label) and language (3 per label), 3-second espeak-ng clips,
seed 0: the audio heads (by effect and by attention), a head-scaling sweep of the top 5 against
random heads, and grounding under every counterfactual with the listening rates.

    python scripts/listening_demo.py [--gender-per-label 12] [--language-per-label 3]
"""

from __future__ import annotations

import argparse
import warnings

import torch

import audiolens as al
from audiolens.data import AttributeDataset, Sample, generate


def dataset(track: str, n_per_label: int, seed: int) -> tuple[al.Task, AttributeDataset]:
    task = al.sakura_task(track)
    utts = list(generate(track, n_per_label=n_per_label, seed=seed, split="test"))
    samples = [Sample(f"{track}{i}", u.label, audio=u.waveform[: 3 * 16000], sampling_rate=16000)
               for i, u in enumerate(utts)]
    return task, AttributeDataset(task, samples, name=track)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gender-per-label", type=int, default=12)
    ap.add_argument("--language-per-label", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    model = al.models.demo()
    for track, n in (("gender", args.gender_per_label), ("language", args.language_per_label)):
        task, data = dataset(track, n, args.seed)
        print(f"\n== {track}: {len(data)} clips")
        heads = al.find_audio_heads(model, data, task, top_k=5, progress=False)
        frame = heads.to_frame()
        cols = ["layer", "head", "audio_share", "effect", "effect_low", "effect_high"]
        print("by effect of ablating at the answer token:")
        print(frame.sort_values("rank_effect").head(6)[cols].round(3).to_string(index=False))
        print("by attention to the audio:")
        print(frame.sort_values("rank_attention").head(4)[cols].round(3).to_string(index=False))
        sweep = al.steer_heads(model, data, task, heads.top(5), factors=(0, 0.5, 2, 3),
                               random_baseline_seeds=2, progress=False)
        print("scaling the top 5 heads:")
        print(sweep.to_frame().round(3).to_string(index=False))
        with torch.no_grad():
            g = al.grounding(model, data, task, conditions=("silence", "noise", "swap", "reversed", "no_audio"),
                             progress=False)
        print("grounding I(real) - I(counterfactual) per layer:")
        print(g.to_frame().pivot(index="layer", columns="condition", values="grounding").round(2).to_string())
        print("listening rate:", {k: round(v, 3) for k, v in g.listening_rate().items()})


if __name__ == "__main__":
    main()
