"""Grounding: does the answer come from the audio? Compare each layer's readout with the real
clip against counterfactual audio (silence, noise, a clip of another label, the clip reversed,
or no audio at all).

Per layer ℓ and condition c, grounding is ``I_ℓ(real) − I_ℓ(c)``: the information score (Eq. 2,
accuracy of the lens's argmax over the label set at the answer token) with the real clip minus
with the counterfactual, with a 95 % interval over clips of the paired differences. The
listening rate of c is the share of clips whose answer (the top layer's argmax) changes when the
audio does: near 0, the model answers from the text alone.

"No audio" is expressed at the decoder: every text position is blocked from the audio tokens in
every block (:class:`~audiolens.interventions.AudioMask`), so nothing of the clip is read, while
token positions keep their numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool
from torch import Tensor

from ..errors import CounterfactualError
from ..hooked import HookedAudioLM
from ..interventions import AudioMask
from ..lenses.logit import LogitLens
from ..tasks import Task
from .common import label_names
from .patching import CORRUPTIONS, corrupt_clips

CONDITIONS = (*CORRUPTIONS, "no_audio")


@dataclass
class GroundingResult:
    """``correct[c][ℓ, r]``: whether layer ℓ's readout is right for clip r under condition c
    (``"real"`` and each counterfactual); ``answers[c][r]``: the top layer's answer."""

    conditions: list[str]
    correct: dict[str, Bool[Tensor, "layers clips"]]
    answers: dict[str, np.ndarray]
    ids: list[str]
    labels: tuple[str, ...]

    @classmethod
    def concat(cls, parts: Sequence[GroundingResult]) -> GroundingResult:
        """The clips of several results (same conditions) as one."""
        first = parts[0]
        return cls(first.conditions, {c: torch.cat([p.correct[c] for p in parts], 1) for c in first.correct},
                   {c: np.concatenate([p.answers[c] for p in parts]) for c in first.answers},
                   [i for p in parts for i in p.ids], first.labels)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per clip and condition (``"real"`` included): id, condition, prediction (the
        top layer's label), correct (per layer 0..L) (the per-clip record format of a study)."""
        return [{"id": i, "condition": c, "prediction": self.labels[int(self.answers[c][r])],
                 "correct": [bool(x) for x in self.correct[c][:, r].tolist()]}
                for r, i in enumerate(self.ids) for c in ["real", *self.conditions]]

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], labels: Sequence[str]) -> GroundingResult:
        """The result back from :meth:`to_rows` rows."""
        ids = list(dict.fromkeys(str(r["id"]) for r in rows))
        conditions = list(dict.fromkeys(r["condition"] for r in rows if r["condition"] != "real"))
        by = {(str(r["id"]), r["condition"]): r for r in rows}
        correct = {c: torch.tensor([by[(i, c)]["correct"] for i in ids]).T for c in ["real", *conditions]}
        answers = {c: np.array([list(labels).index(by[(i, c)]["prediction"]) for i in ids])
                   for c in ["real", *conditions]}
        return cls(conditions, correct, answers, ids, tuple(labels))

    def grounding(self, condition: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per layer: mean of I(real) − I(condition) over clips, and its 95 % interval."""
        if condition not in self.conditions:
            raise KeyError(f"unknown condition {condition!r}; this result has {self.conditions}")
        diff = (self.correct["real"].float() - self.correct[condition].float()).numpy()
        mean = diff.mean(1)
        n = diff.shape[1]
        half = 1.96 * diff.std(1, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
        return mean, mean - half, mean + half

    def listening_rate(self) -> dict[str, float]:
        """Per condition, the share of clips whose answer changes when the audio does."""
        real = self.answers["real"]
        return {c: float(np.mean(self.answers[c] != real)) for c in self.conditions}

    def to_frame(self):
        """One row per (condition, layer): info_real, info_counterfactual, grounding, low,
        high, listening_rate, n."""
        import pandas as pd

        rates = self.listening_rate()
        info_real = self.correct["real"].float().mean(1).numpy()
        rows = []
        for c in self.conditions:
            mean, low, high = self.grounding(c)
            info_c = self.correct[c].float().mean(1).numpy()
            rows += [{"condition": c, "layer": layer, "info_real": float(info_real[layer]),
                      "info_counterfactual": float(info_c[layer]), "grounding": float(mean[layer]),
                      "low": float(low[layer]), "high": float(high[layer]), "listening_rate": rates[c],
                      "n": len(self.ids)} for layer in range(len(mean))]
        return pd.DataFrame(rows)

    def plot(self, ax=None):
        """Grounding per layer, one line (with its interval) per condition."""
        from .listening_plots import plot_grounding

        return plot_grounding(self, ax=ax)


def _no_audio(batch) -> AudioMask:
    """Every real position after the first audio token, blocked from the audio in every block."""
    if "audio" not in batch.spans or not bool(batch.span("audio").any(1).all()):
        raise CounterfactualError("no_audio: this batch names no audio tokens, so its family cannot hide them")
    audio = batch.span("audio")
    real = ~batch.span("padding") if "padding" in batch.spans else torch.ones_like(audio)
    after = (audio.long().cumsum(1) > 0) & ~audio & real
    width = int(after.sum(1).max())
    index = torch.full((len(batch), width), -1, dtype=torch.long)
    for r in range(len(batch)):
        where = after[r].nonzero().flatten()
        index[r, : len(where)] = where
        index[r, len(where):] = where[-1]  # repeat the last: AudioMask reads no -1
    return AudioMask(keys="audio", queries=index)


@torch.no_grad()
def grounding(
    model: HookedAudioLM,
    dataset: Any,
    task: Task,
    conditions: Sequence[str] = ("silence", "noise", "swap", "reversed"),
    *,
    snr_db: float = 0.0,
    seed: int = 0,
    prompt: str = "P3",
    batch_size: int = 8,
    progress: bool = True,
) -> GroundingResult:
    """Information score per layer with each clip of ``dataset`` against each counterfactual in
    ``conditions`` (``"silence"``, ``"noise"`` at ``snr_db``, ``"swap"`` with a clip of another
    label of the data set, ``"reversed"``, ``"no_audio"``), plus the listening rate.

    ``dataset`` is a data set (samples with ``id``, ``label`` and ``load(rate)``). Cost: one lens
    pass per clip and condition, plus one for the real clips.

    Example:
        >>> g = al.grounding(model, dataset, task, conditions=("silence", "swap"))  # doctest: +SKIP
        >>> g.to_frame().query("condition == 'swap'")  # doctest: +SKIP
        >>> g.listening_rate()  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    conditions = list(conditions)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise CounterfactualError(f"unknown conditions {unknown or conditions}: use some of {list(CONDITIONS)}")
    samples = list(dataset)
    if not samples:
        raise ValueError("grounding: the data set is empty")
    rate = model.sampling_rate
    clips = [s.load(rate, max_seconds=model.max_audio_seconds, truncate=True) for s in samples]
    labels = [s.label for s in samples]
    ids = [s.id for s in samples]
    waves = counterfactual_waves(clips, labels, conditions, snr_db, seed)
    parts = []
    for start in tqdm(range(0, len(clips), batch_size), desc="grounding", disable=not progress):
        part = slice(start, start + batch_size)
        parts.append(grounding_of_clips(model, task, clips[part], {c: w[part] for c, w in waves.items()},
                                        conditions, labels[part], ids[part], prompt))
    return GroundingResult.concat(parts)


def counterfactual_waves(clips: Sequence[np.ndarray], labels: Sequence[str], conditions: Sequence[str],
                         snr_db: float = 0.0, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Each waveform condition's clips, drawn over the whole data set (a swap partner may sit in
    another batch); ``"no_audio"`` needs none."""
    return {c: corrupt_clips(clips, c, snr_db=snr_db, seed=seed, labels=labels)
            for c in conditions if c != "no_audio"}


@torch.no_grad()
def grounding_of_clips(model: HookedAudioLM, task: Task, clips: Sequence[np.ndarray],
                       waves: dict[str, Sequence[np.ndarray]], conditions: Sequence[str], labels: Sequence[str],
                       ids: Sequence[str], prompt: str = "P3") -> GroundingResult:
    """:func:`grounding` of one batch of clips, given each condition's counterfactual clips."""
    rate = model.sampling_rate
    lens = LogitLens(label_names(task), positions=("last",))
    correct: dict[str, Tensor] = {}
    answers: dict[str, np.ndarray] = {}

    def keep(name: str, res) -> None:
        logits = res.logits_at("last")  # (layers, batch, labels)
        correct[name] = logits.argmax(-1) == res.targets[None]
        answers[name] = logits[-1].argmax(-1).numpy()

    batch = model.prepare(list(clips), rate, task.prompt(prompt), labels=list(labels), ids=list(ids))
    keep("real", lens.run(model, batch))
    for c in conditions:
        if c == "no_audio":
            keep(c, lens.run(model, batch, [_no_audio(batch)]))
        else:
            cf = model.prepare(list(waves[c]), rate, task.prompt(prompt), labels=list(labels), ids=list(ids))
            keep(c, lens.run(model, cf))
    return GroundingResult(list(conditions), correct, answers, list(ids), tuple(label_names(task)))
