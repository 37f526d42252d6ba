"""``report.html``: a study's results in one self-contained page.

The page needs no server and no network: the figures, the per-clip plots and the audio are
embedded as ``data:`` URIs, the styling is inline and there is no script. It holds the run's
summary, Tables II–III (and the knockout table when there is one), Figs. 2–5, and a drill-down
of the wrong answers: for each attribute, up to ``max_wrong`` wrongly answered clips, each with
an audio player, its per-layer label probabilities at the answer token (from the records) and,
when the study holds its model, a token-lens heatmap (what each layer decodes to at the audio
and answer positions).

Example:
    >>> write_html_report(study, summary_text)  # doctest: +SKIP
    PosixPath('results/report.html')
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import AudioNote
from ..files import write_atomic
from .records import RecordError
from .tables import attribute_order

if TYPE_CHECKING:
    from ..data import Sample
    from ..lenses.result import LensResult
    from .runner import Study

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #eee; }
img { max-width: 100%; }
figure { margin: 1.5em 0; }
details { border: 1px solid #ddd; border-radius: 4px; padding: 0.5em 1em; margin: 0.6em 0; }
summary { cursor: pointer; font-weight: 600; }
.clip { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.clip img { max-width: 520px; }
"""


def data_uri(payload: bytes, mime: str) -> str:
    """``payload`` as a ``data:`` URI.

    Example:
        >>> data_uri(b"hi", "text/plain")
        'data:text/plain;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    """A mono float clip as a 16-bit PCM WAV file."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wave, dtype=np.float32), -1, 1), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _png(fig: Any) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return data_uri(buf.getvalue(), "image/png")


def _table(csv: Path, title: str) -> str:
    import pandas as pd

    if not csv.is_file():
        return ""
    df = pd.read_csv(csv)
    body = df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", border=0)
    return f"<h3>{html.escape(title)}</h3>\n{body}"


def layer_curve(res: LensResult, row: int, position: str = "last") -> Any:
    """One clip's label probabilities (softmax over the labels) per layer at ``position``:
    the target in green, the model's answer in red when it differs, the other labels grey."""
    import matplotlib.pyplot as plt
    import torch

    assert res.targets is not None, "a result with targets (the records always have them)"
    probs = torch.softmax(res.logits_at(position)[:, row].float(), -1).numpy()  # (layers, labels)
    target = int(res.targets[row])
    answer = int(probs[-1].argmax())
    fig, ax = plt.subplots(figsize=(5, 2.6))
    layers = np.arange(probs.shape[0])
    for k, label in enumerate(res.labels):
        if k in (target, answer):
            continue
        ax.plot(layers, probs[:, k], color="0.75", lw=1)
    if answer != target:
        ax.plot(layers, probs[:, answer], color="#d62728", marker="o", ms=3, label=f"answer: {res.labels[answer]}")
    ax.plot(layers, probs[:, target], color="#2ca02c", marker="o", ms=3, label=f"truth: {res.labels[target]}")
    ax.set_xlabel("layer ℓ (0 = embedding)")
    ax.set_ylabel("p(label)")
    ax.set_ylim(0, 1)
    ax.set_xticks(layers)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"{res.ids[row]}: label probabilities at the {position} token", fontsize=9)
    return fig


def _token_heatmap(study: Study, sample: Sample, wave: np.ndarray, prompt_name: str, task: Any) -> str:
    from ..lenses.token import TokenLens

    model = study.model
    assert model is not None, "the token lens needs the study's model"
    batch = model.prepare([wave], model.sampling_rate, task.prompt(prompt_name), [sample.label],
                          ids=[sample.id], truncate=study.truncate)
    tok = TokenLens(top_k=1).run(model, batch, positions=["audio", "last"])
    return _png(tok.plot(row=0))


def _wrong_answers(study: Study, model_name: str, prompt: str, max_wrong: int) -> str:
    """The drill-down section: per attribute, the first ``max_wrong`` wrong answers."""
    meta = study.store.meta(model_name)
    samples: dict[str, Sample] = {s.id: s for ds in study.datasets for s in ds.samples}
    tasks = {ds.task.name: ds.task for ds in study.datasets}
    parts = []
    for attr in attribute_order(meta["attributes"]):
        try:
            res = study.store.result(model_name, attr, prompt)
        except RecordError:
            continue
        assert res.targets is not None  # (records always hold the targets)
        wrong = np.flatnonzero(~res.correct)
        answers = res.predictions("last")
        parts.append(f"<h3>{html.escape(attr)} ({prompt}): {len(wrong)} of {len(res)} answers wrong"
                     + (f", the first {max_wrong} shown" if len(wrong) > max_wrong else "") + "</h3>")
        for r in wrong[:max_wrong]:
            clip_id = res.ids[r]
            said, truth = answers[r], res.labels[int(res.targets[r])]
            pieces = []
            sample = samples.get(clip_id)
            wave, rate = None, 16000
            if sample is not None:
                with warnings.catch_warnings():  # (the run already noted its conversions)
                    warnings.simplefilter("ignore", AudioNote)
                    if study.model is not None:
                        rate = study.model.sampling_rate
                        wave = sample.load(rate, max_seconds=study.model.max_audio_seconds,
                                           truncate=study.truncate)
                    else:
                        wave = sample.load(rate)
            if wave is not None:
                pieces.append(f'<audio controls preload="metadata" src="{data_uri(wav_bytes(wave, rate), "audio/wav")}">'
                              "</audio>")
            pieces.append(f'<img alt="per-layer label probabilities of {html.escape(clip_id)}" '
                          f'src="{_png(layer_curve(res, int(r)))}">')
            if wave is not None and sample is not None and study.model is not None and attr in tasks:
                pieces.append(f'<img alt="token lens of {html.escape(clip_id)}" '
                              f'src="{_token_heatmap(study, sample, wave, prompt, tasks[attr])}">')
            parts.append(
                f"<details><summary>{html.escape(clip_id)}: answered {html.escape(str(said))}, "
                f"truth {html.escape(truth)}</summary>\n<div class=\"clip\">{''.join(pieces)}</div></details>"
            )
    return "\n".join(parts)


def write_html_report(
    study: Study,
    summary: str = "",
    *,
    figures: Sequence[int] = (2, 3, 4, 5),
    prompt: str | None = None,
    max_wrong: int = 8,
    path: str | Path | None = None,
) -> Path:
    """Write ``report.html`` (default: in the study's output folder, beside ``tables/`` and
    ``figures/``) from the study's records, tables and figures; its path.

    ``summary`` is the run's printed summary; ``prompt`` the format whose wrong answers are
    drilled into (default: the last of the study's prompts, the enrichment's). Figures and
    tables not on disk are left out; without matplotlib the per-clip plots are too.
    """
    import importlib.util

    out = Path(study.out)
    path = Path(path) if path is not None else out / "report.html"
    prompt = prompt or (study.prompts[-1] if study.prompts else "P3")
    plots = importlib.util.find_spec("matplotlib") is not None
    sections = [f"<h1>audiolens report</h1>\n<p>Output folder: <code>{html.escape(str(out))}</code></p>"]
    if summary:
        sections.append(f"<h2>Summary</h2>\n<pre>{html.escape(summary)}</pre>")
    tables = [_table(out / "tables" / f"{name}.csv", title) for name, title in
              (("table2", "Table II: critical layer and accuracy"),
               ("table3", "Table III: critical layer against accuracy"),
               ("knockout", "Attention knockout"))]
    if any(tables):
        sections.append("<h2>Tables</h2>\n" + "\n".join(t for t in tables if t))
    figs = [(f"Fig. {n}", out / "figures" / f"fig{n}.png") for n in figures]
    figs = [(name, p) for name, p in figs if p.is_file()]
    # Any other figure the run drew (listening maps, probes), after the paper's.
    paper = {p.name for _, p in figs}
    figs += [(p.stem, p) for p in sorted((out / "figures").glob("*.png")) if p.name not in paper
             and not p.name.startswith("fig")]
    if figs:
        sections.append("<h2>Figures</h2>\n" + "\n".join(
            f'<figure><img alt="{html.escape(name)}" src="{data_uri(p.read_bytes(), "image/png")}">'
            f"<figcaption>{html.escape(name)} ({html.escape(p.name)})</figcaption></figure>" for name, p in figs))
    if plots:
        for model_name in study.store.models():
            drill = _wrong_answers(study, model_name, prompt, max_wrong)
            if drill:
                sections.append(f"<h2>Wrong answers: {html.escape(model_name)}</h2>\n"
                                "<p>Each clip: its audio, its label probabilities per layer at the answer "
                                "token (from the records), and what the token lens decodes at each layer "
                                "for the audio and answer positions.</p>\n" + drill)
    page = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>audiolens report</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )
    write_atomic(path, page)
    return path


__all__ = ["data_uri", "layer_curve", "wav_bytes", "write_html_report"]
