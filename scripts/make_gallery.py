"""Draw every figure audiolens makes, on the shipped demo model, into docs/img/gallery/, and
write docs/gallery.md with each figure under the code that drew it.

The page's code is the code this script runs (``SETUP`` once, then each entry's ``code`` in the
same namespace), so a figure can be redrawn after a change to the library::

    python scripts/make_gallery.py          # about a minute on two CPU cores

tests/test_site.py checks that docs/gallery.md is what ``page()`` writes and that every image
it shows exists.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "gallery.md"
IMAGES = ROOT / "docs" / "img" / "gallery"


class Entry(NamedTuple):
    slug: str  # the image is docs/img/gallery/<slug>.png
    title: str
    text: str  # what the figure shows, one or two sentences
    code: str  # leaves the figure in ``fig`` (matplotlib) or its PNG's path in ``path``


SETUP = '''\
import audiolens as al
from audiolens.data import AttributeDataset, Sample, synthetic_dataset
from audiolens.data.synth import generate

model = al.models.demo()                       # the shipped 8-layer demo model, CPU, seconds
task = al.sakura_task("gender")
utts = list(generate("gender", n_per_label=4, seed=0, split="test"))   # espeak-ng speech
clips = [u.waveform[: 3 * 16000] for u in utts]
labels = [u.label for u in utts]
batch = model.prepare(clips, 16000, task.prompt("P3"), labels=labels)
data = AttributeDataset(task, [Sample(f"g{i}", u.label, audio=c, sampling_rate=16000)
                               for i, (u, c) in enumerate(zip(utts, clips))], name="gender")
'''

ENTRIES = [
    Entry("lens_result", "Logit lens: information score per layer",
          "`LensResult.plot`: the share of clips whose right label leads among the labels at each "
          "decoder layer, with its 95 % Wilson band, the clip count and the chance line.",
          '''\
res = al.LogitLens(task).run(model, batch)
fig = res.plot(title="gender, P3")
'''),
    Entry("info_scores", "Several lens results on one axis",
          "`plot_info_scores`: one line per result, here the plain run against the same run with "
          "the audio masked from every decoder block (Fig. 4's comparison for one model).",
          '''\
from audiolens.lenses.plots import plot_info_scores

masked = al.LogitLens(task).run(model, batch, interventions=[al.AudioMask()])
fig = plot_info_scores({"plain": res, "audio masked": masked}, title="gender, P3")
'''),
    Entry("token_lens", "Token lens",
          "`TokenLens(...).run(...).plot()`: the top tokens the unembedding reads at each layer "
          "and position of one clip's prompt.",
          '''\
tok = al.TokenLens(top_k=3).run(model, batch.subset([0]), positions=["question", "prefix"])
fig = tok.plot()
'''),
    Entry("knockout", "Attention knockout",
          "`attention_knockout(...).plot()`: how much the target's probability falls when the "
          "answer position cannot attend to the audio, in sliding windows of decoder layers.",
          '''\
ko = al.attention_knockout(model, batch, task, keys="audio", window=2)
fig = ko.plot()
'''),
    Entry("dla", "Direct logit attribution",
          "`direct_logit_attribution(...).plot()`: each block's attention and MLP output, read "
          "straight through the unembedding, as a share of the logit gap between the right "
          "label and the others.",
          '''\
dla = al.direct_logit_attribution(model, batch, task)
fig = dla.plot()
'''),
    Entry("patching", "Activation patching",
          "`patch(...).plot()`: how much of the clean answer a clean residual stream restores "
          "in a run on noise-corrupted clips, per layer and position.",
          '''\
corrupt = model.prepare(al.corrupt_clips(clips, "noise", snr_db=-10), 16000, task.prompt("P3"),
                        labels=labels)
pat = al.patch(model, clean=batch, corrupt=corrupt, task=task, what="resid")
fig = pat.plot()
'''),
    Entry("probes", "Linear probes against the logit lens",
          "`run_probes(...).plot()`: what a probe finds *present* in each encoder and decoder "
          "layer next to what the head *reads* (the lens), with a shuffled-label control.",
          '''\
train = synthetic_dataset("gender", 6, seed=0, split="train")
test = synthetic_dataset("gender", 6, seed=0, split="test")
probes = al.run_probes(model, train, "last", held_out=test, truncate=True, progress=False)
fig = probes.plot()
'''),
    Entry("span_attention", "Attention to the audio",
          "`attention_to_spans(...).plot()`: the share of each head's attention that the answer "
          "position gives the audio span, per layer and head.",
          '''\
att = al.attention_to_spans(model, batch, queries="last")
fig = att.plot("audio")
'''),
    Entry("audio_heads", "Listening heads",
          "`find_audio_heads(...).plot()`: how much the target's logit gap drops when one head is "
          "ablated, per block and head; the heads the answer rests on stand out.",
          '''\
heads = al.find_audio_heads(model, data, task, top_k=4, progress=False)
fig = heads.plot()
'''),
    Entry("grounding", "Grounding: does the answer follow the audio?",
          "`grounding(...).plot()`: per layer, the information score with the real audio minus "
          "the score with silence, noise, another clip, the clip reversed or no audio; the "
          "title gives each condition's listening rate.",
          '''\
g = al.grounding(model, data, task, conditions=("silence", "noise", "swap", "reversed", "no_audio"),
                 progress=False)
fig = g.plot()
'''),
    Entry("fig2", "The paper's study: Fig. 2",
          "A whole `Study` on synthesized SAKURA-style data (gender and language); Fig. 2 is the "
          "information score per layer for each prompt format, with each format's critical layer.",
          '''\
import tempfile
from pathlib import Path
from audiolens.data import load_sakura, synthesize

work = Path(tempfile.mkdtemp())
root = synthesize(work / "sakura", tracks=["gender", "language"], n_per_label=3, seed=0,
                  split="test")
study = al.Study(model, [load_sakura(root, "gender"), load_sakura(root, "language")],
                 out=work / "results", batch_size=8, truncate=True,
                 enrich={"n_probe": 4, "scales": (0.0, 0.5, 1.0), "seeds": 2}, progress=False)
study.run()
path = study.figure(2)
'''),
    Entry("fig3", "Fig. 3: right and wrong answers",
          "P3, the clips the model answers correctly and wrongly, each subset's information score "
          "per layer; a subset of fewer than 5 clips is not drawn, and the panel says so.",
          "path = study.figure(3)\n"),
    Entry("fig4", "Fig. 4: audio masked",
          "P3, the information score at the last token, at the attribute word's token and at the "
          "last token with the audio masked in its self-attention.",
          "path = study.figure(4)\n"),
    Entry("fig5", "Fig. 5: enrichment sweep",
          "Eq. 5's enrichment: accuracy as the audio's hidden states are scaled into a chosen "
          "layer, against random layers; it says when the chosen layer rests on no evidence.",
          "path = study.figure(5)\n"),
]


def page() -> str:
    """The Markdown of docs/gallery.md."""
    parts = [
        "# Gallery\n",
        textwrap.fill("Every figure audiolens draws, on the shipped demo model (`al.models.demo()`, an 8-layer "
        "model trained on espeak-ng speech: it runs on a CPU in seconds), each under the code "
        "that drew it. `scripts/make_gallery.py` runs exactly this code "
        "and redraws the images. The code below runs in order, after this setup:", 100) + "\n",
        f"```python\n{SETUP}```\n",
    ]

    for e in ENTRIES:
        parts += [f"## {e.title}\n", textwrap.fill(e.text, 100) + "\n", f"```python\n{e.code}```\n",
                  f"![{e.title}](img/gallery/{e.slug}.png)\n"]
    return "\n".join(parts)


def draw(only: list[str]) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    IMAGES.mkdir(parents=True, exist_ok=True)
    ns: dict = {"__name__": "gallery"}
    exec(compile(SETUP, "setup", "exec"), ns)  # noqa: S102 - the page's own code, shown as run
    for e in ENTRIES:
        start = time.perf_counter()
        ns.pop("fig", None), ns.pop("path", None)
        exec(compile(e.code, e.slug, "exec"), ns)  # noqa: S102
        out = IMAGES / f"{e.slug}.png"
        if only and e.slug not in only:
            continue
        if "fig" in ns:
            ns["fig"].savefig(out, dpi=90, bbox_inches="tight")
        else:
            shutil.copyfile(ns["path"], out)
        print(f"{out.relative_to(ROOT)}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    PAGE.write_text(page())
    draw(sys.argv[1:])
