"""RQ4 and RQ5 on the demo model: mask the audio at the answer token, then enrich a deep layer.

    python examples/mask_and_enrich.py

Runs the language task (P3) on held-out synthesized clips three ways in one shared-prefix call:
plain, with the audio masked at the last token, and with Eq. 5's enrichment from the layer chosen
on a probe split.
"""

import audiolens as al
from audiolens.data.synth import generate


def main() -> None:
    model = al.models.demo()
    task = al.sakura_task("language")
    clips = list(generate("language", n_per_label=4, seed=2, split="test"))
    batch = model.prepare([c.waveform for c in clips], 16000, task.prompt("P3"),
                          labels=[c.label for c in clips], truncate=True)  # the demo hears 3 s
    lens = al.LogitLens(task)

    probe, test = al.split(batch, n_probe=12, seed=0)
    probe_res = lens.run(model, probe)
    gap = model.n_layers // 2  # the paper's gap of 5 suits 32-layer models; the demo has 8
    try:
        layer = al.select_enrich_layer(probe_res, gap=gap)
    except ValueError:  # no wrong answers on the probe split
        layer = 1
    out = lens.run_many(model, test, {
        "plain": [],
        "audio masked at the last token": [al.AudioMask()],
        f"enriched from layer {layer}": [al.Enrich(layer, 0.5, gap=gap)],
    })
    for name, res in out.items():
        print(f"{name:<34} accuracy {res.accuracy():.2f}   last-layer info at the attribute token "
              f"{res.info_scores('attribute')[-1]:.2f}")


if __name__ == "__main__":
    main()
