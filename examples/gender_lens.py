"""Where does the demo model know the speaker's gender? One lens run, three prompt formats.

    python examples/gender_lens.py [--out gender_lens.png]

Synthesizes a few held-out clips with espeak-ng, runs the logit lens of the shipped demo model
at every layer, prints information scores and critical layers, and saves a plot.
"""

import argparse

import numpy as np

import audiolens as al
from audiolens.data.synth import generate
from audiolens.lenses.plots import plot_info_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gender_lens.png")
    ap.add_argument("--per-label", type=int, default=6)
    args = ap.parse_args()

    model = al.models.demo()
    task = al.sakura_task("gender")
    clips = list(generate("gender", n_per_label=args.per_label, seed=1, split="test"))
    audios = [c.waveform for c in clips]
    labels = [c.label for c in clips]
    lens = al.LogitLens(task)

    results = {}
    for fmt in ("P1", "P2", "P3"):
        batch = model.prepare(audios, 16000, task.prompt(fmt), labels=labels, truncate=True)  # 3 s window
        res = lens.run(model, batch)
        results[fmt] = res
        scores = " ".join(f"{x:.2f}" for x in res.info_scores())
        print(f"{fmt}: accuracy {res.accuracy():.2f}  critical layer {res.critical_layer():.2f}  "
              f"info per layer [{scores}]")

    res = results["P3"]
    print(f"P3: {int(res.correct.sum())} right, {int((~res.correct).sum())} wrong")
    fig = plot_info_scores(
        {"P1": results["P1"], "P2": results["P2"], "P3": results["P3"],
         "P3 attribute token@attribute": res},
        title="demo model, gender: information score per layer",
    )
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    assert np.isfinite(res.label_logits).all()


if __name__ == "__main__":
    main()
