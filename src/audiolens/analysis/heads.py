"""Audio heads: which attention heads read the audio, and which of them the answer needs.

:func:`find_audio_heads` ranks every (layer, head) two ways over a data set, with intervals over
clips: by its attention to the audio at the answer token (:func:`attention_to_spans`) and by
the causal effect of ablating it there (the drop in the target's label-logit gap). Both come
from one pass per batch plus one single-token step per layer: ablations at the last token leave
every earlier position unchanged, so the prefix's key/value cache is shared and a step holds one
copy of the batch per head. :func:`steer_heads` then scales the top-k heads by λ and counts the
answers that change, turn right (fixed) or turn wrong (broken), against k random heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .. import metrics
from ..batch import AudioBatch
from ..hooked import HookedAudioLM
from ..interventions import HeadAblation, HeadScale, Intervention, head_count
from ..lenses.logit import LogitLens
from ..tasks import Task
from .attention import SpanAttentionRecorder
from .common import gap, label_names, rival_labels, targets_of

if TYPE_CHECKING:
    import pandas as pd


def as_batches(model: HookedAudioLM, data: Any, task: Task, prompt: str = "P3",
               batch_size: int = 8) -> list[AudioBatch]:
    """``data`` as prepared batches: an :class:`AudioBatch`, a list of them, or a data set
    (anything iterable over samples with ``id``, ``label`` and ``load(rate)``), prepared with
    ``task.prompt(prompt)`` in batches of ``batch_size`` clips."""
    if isinstance(data, AudioBatch):
        return [data]
    items = list(data)
    if items and all(isinstance(b, AudioBatch) for b in items):
        return items
    if not items:
        raise ValueError("no clips: the data set is empty")
    rate = model.sampling_rate
    out = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        out.append(model.prepare([s.load(rate, max_seconds=model.max_audio_seconds, truncate=True) for s in chunk],
                                 rate, task.prompt(prompt), labels=[s.label for s in chunk],
                                 ids=[s.id for s in chunk]))
    return out


def _interval(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean over the last axis and its 95 % normal-approximation interval."""
    n = x.shape[-1]
    mean = x.mean(-1)
    half = 1.96 * x.std(-1, unbiased=True) / np.sqrt(n) if n > 1 else torch.full_like(mean, float("nan"))
    return mean, mean - half, mean + half


@dataclass
class AudioHeads:
    """Per (layer, head, clip): ``attention`` (share of the answer token's attention on the audio)
    and ``effect`` (the target's label-logit gap minus the gap with that head ablated at the
    answer token; > 0: the head supports the right answer). ``layers`` are blocks 1..L.
    """

    layers: list[int]
    attention: Float[Tensor, "layers heads clips"]
    effect: Float[Tensor, "layers heads clips"]
    ids: list[str]
    mode: str = "zero"
    top_k: int = 10

    @property
    def heads(self) -> int:
        return int(self.attention.shape[1])

    @classmethod
    def concat(cls, parts: Sequence[AudioHeads], top_k: int | None = None) -> AudioHeads:
        """The clips of several results (same layers and heads) as one."""
        first = parts[0]
        return cls(first.layers, torch.cat([p.attention for p in parts], -1), torch.cat([p.effect for p in parts], -1),
                   [i for p in parts for i in p.ids], first.mode, first.top_k if top_k is None else top_k)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per clip, layer and head: id, layer, head, audio_share, effect (the per-clip
        record format of a study)."""
        return [{"id": i, "layer": layer, "head": h, "audio_share": float(self.attention[li, h, r]),
                 "effect": float(self.effect[li, h, r])}
                for r, i in enumerate(self.ids) for li, layer in enumerate(self.layers) for h in range(self.heads)
                if not torch.isnan(self.effect[li, h, r])]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], mode: str = "zero", top_k: int = 10) -> AudioHeads:
        """The result back from :meth:`to_rows` rows (clips in the order they first appear)."""
        ids = list(dict.fromkeys(str(r["id"]) for r in rows))
        layers = sorted({int(r["layer"]) for r in rows})
        heads = max(int(r["head"]) for r in rows) + 1
        att = torch.full((len(layers), heads, len(ids)), float("nan"))
        eff = att.clone()
        where = {i: k for k, i in enumerate(ids)}
        for r in rows:
            li, h, c = layers.index(int(r["layer"])), int(r["head"]), where[str(r["id"])]
            att[li, h, c], eff[li, h, c] = float(r["audio_share"]), float(r["effect"])
        return cls(layers, att, eff, ids, mode, top_k)

    def to_frame(self) -> pd.DataFrame:
        """One row per (layer, head): audio_share and effect (means over clips) with 95 %
        intervals (``*_low``, ``*_high``), their ranks (1 = most), and n."""
        import pandas as pd

        a, a_lo, a_hi = _interval(self.attention)
        e, e_lo, e_hi = _interval(self.effect)
        frame = pd.DataFrame([
            {"layer": layer, "head": h, "audio_share": float(a[i, h]), "audio_share_low": float(a_lo[i, h]),
             "audio_share_high": float(a_hi[i, h]), "effect": float(e[i, h]), "effect_low": float(e_lo[i, h]),
             "effect_high": float(e_hi[i, h]), "n": len(self.ids)}
            for i, layer in enumerate(self.layers) for h in range(self.heads)
        ])
        frame["rank_attention"] = frame["audio_share"].rank(ascending=False, method="first").astype(int)
        frame["rank_effect"] = frame["effect"].rank(ascending=False, method="first").astype(int)
        return frame

    def top(self, k: int | None = None, by: str = "effect") -> dict[int, list[int]]:
        """The ``k`` best heads (default: the ``top_k`` asked for) as ``{layer: [heads]}`` (for :class:`HeadScale` /
        :class:`HeadAblation`), ranked ``by`` ``"effect"`` or ``"attention"``."""
        if by not in ("effect", "attention"):
            raise ValueError(f"by must be 'effect' or 'attention', got {by!r}")
        frame = self.to_frame().sort_values(f"rank_{by}").head(self.top_k if k is None else k)
        out: dict[int, list[int]] = {}
        for layer, head in zip(frame["layer"], frame["head"]):
            out.setdefault(int(layer), []).append(int(head))
        return {layer: sorted(h) for layer, h in sorted(out.items())}

    def plot(self, what: str = "effect", ax: Any = None) -> Any:
        """Layer × head heatmap of the mean ``effect`` or ``attention`` on the audio."""
        from .listening_plots import plot_audio_heads

        return plot_audio_heads(self, ax=ax, what=what)


@torch.no_grad()
def find_audio_heads(
    model: HookedAudioLM,
    data: Any,
    task: Task,
    top_k: int = 10,
    *,
    mode: str = "zero",
    prompt: str = "P3",
    batch_size: int = 8,
    progress: bool = True,
) -> AudioHeads:
    """Rank every head by attention to the audio and by the effect of ablating it (``mode``
    ``"zero"``, or ``"mean"`` over each batch at the answer token), over ``data`` (a data set,
    a batch or a list of batches).

    Cost per batch: one forward pass (the lens and the attention read together) and one
    single-token step per layer, each holding one copy of the batch per head.

    Example:
        >>> heads = al.find_audio_heads(model, dataset, task, top_k=10)  # doctest: +SKIP
        >>> heads.to_frame().nsmallest(5, "rank_effect")  # doctest: +SKIP
        >>> heads.plot()  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if mode not in ("zero", "mean"):
        raise ValueError(f"mode must be 'zero' or 'mean', got {mode!r}")
    parts = [heads_of_batch(model, batch, task, mode)
             for batch in tqdm(as_batches(model, data, task, prompt, batch_size), desc="audio heads",
                               disable=not progress)]
    return AudioHeads.concat(parts, top_k)


@torch.no_grad()
def heads_of_batch(model: HookedAudioLM, batch: AudioBatch, task: Task, mode: str = "zero") -> AudioHeads:
    """:func:`find_audio_heads` of one batch: one pass (lens and attention together), then one
    single-token step per layer with one copy of the batch per head."""
    layers = list(range(1, model.n_layers + 1))
    counts = {layer: head_count(model, layer) for layer in layers}
    n_heads = max(counts.values())
    targets = targets_of(batch)
    lens = LogitLens(label_names(task), positions=("last",), variants_per_step=n_heads)
    base = HeadAblation({1: [0]}, mode=mode, positions="last", reference=batch if mode == "mean" else None)
    if mode == "mean":
        base.reference_means(model, batch)  # one pass for every layer; the variants share it
    variants: dict[Any, list[Intervention]] = {"none": []}
    for layer in layers:
        for h in range(counts[layer]):
            variants[(layer, h)] = [base.for_heads({layer: [h]})]
    rec = SpanAttentionRecorder(model, batch, "last")
    with rec.recording():
        out = lens.run_many(model, batch, variants)
    plain = out["none"].logits_at("last")[model.n_layers]
    rivals = rival_labels(plain, targets)
    base_gap = gap(plain, targets, rivals)
    eff = torch.full((len(layers), n_heads, len(batch)), float("nan"))
    for (layer, h), res in ((k, v) for k, v in out.items() if k != "none"):
        eff[layer - 1, h] = base_gap - gap(res.logits_at("last")[model.n_layers], targets, rivals)
    share = rec.result().of("audio")  # (layers, rows, heads)
    att = torch.full((len(layers), n_heads, len(batch)), float("nan"))
    att[:, : share.shape[2]] = share.permute(0, 2, 1)
    return AudioHeads(layers, att, eff, list(batch.ids), mode)


@dataclass
class HeadSweep:
    """Accuracy when ``heads`` are scaled by each factor λ (1 = unchanged), against the same
    number of random heads (one draw per seed); ``rows`` has one row per clip and variant:
    id, factor, method (``"top"`` / ``"random"``), seed (-1 for the top heads), prediction,
    correct."""

    heads: dict[int, list[int]]
    rows: Any  # pandas.DataFrame

    @property
    def table(self) -> pd.DataFrame:
        """Accuracy and n per (factor, method, seed)."""
        return (self.rows.groupby(["factor", "method", "seed"], sort=False)["correct"]
                .agg(accuracy="mean", n="size").reset_index())

    def changed_answers(self) -> pd.DataFrame:
        """Per (factor, method, seed): answers that differ from λ = 1 (``changed``), and how
        many of those turned right (``fixed``) or wrong (``broken``)."""
        rows = self.rows
        base = rows[rows["factor"] == 1.0].drop_duplicates("id")
        if base.empty:
            raise ValueError("the sweep has no factor 1 to compare against")
        return metrics.answer_changes(rows, base, ["factor", "method", "seed"])

    def to_frame(self) -> pd.DataFrame:
        """The table with the changed/fixed/broken counts beside each accuracy."""
        return self.table.merge(self.changed_answers(), on=["factor", "method", "seed"])


def _random_heads(counts: Mapping[int, int], k: int, seed: int) -> dict[int, list[int]]:
    pairs = [(layer, h) for layer, n in counts.items() for h in range(n)]
    pick = np.random.default_rng(seed).choice(len(pairs), size=min(k, len(pairs)), replace=False)
    out: dict[int, list[int]] = {}
    for i in sorted(pick.tolist()):
        out.setdefault(pairs[i][0], []).append(pairs[i][1])
    return out


@torch.no_grad()
def steer_heads(
    model: HookedAudioLM,
    data: Any,
    task: Task,
    heads: Mapping[int, Sequence[int]],
    factors: Iterable[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
    *,
    random_baseline_seeds: int | Sequence[int] = 3,
    positions: Any = "last",
    prompt: str = "P3",
    batch_size: int = 8,
    progress: bool = True,
) -> HeadSweep:
    """Scale ``heads`` (e.g. ``find_audio_heads(...).top(10)``) by each factor and record every
    clip's answer, with as many random heads per seed as a baseline. At the answer token
    (``positions="last"``, the default) every variant shares the prefix pass.

    Example:
        >>> sweep = al.steer_heads(model, dataset, task, heads.top(10), factors=(0, 1, 2))  # doctest: +SKIP
        >>> sweep.to_frame()  # accuracy, changed, fixed, broken per factor  # doctest: +SKIP
    """
    import pandas as pd
    from tqdm.auto import tqdm

    factors = sorted({float(f) for f in factors} | {1.0})
    counts = {layer: head_count(model, layer) for layer in range(1, model.n_layers + 1)}
    top = {int(layer): list(h) for layer, h in heads.items()}
    k = sum(len(h) for h in top.values())
    seeds = list(range(random_baseline_seeds)) if isinstance(random_baseline_seeds, int) else list(random_baseline_seeds)
    chosen = {-1: top} | {s: _random_heads(counts, k, s) for s in seeds}
    lens = LogitLens(label_names(task), positions=("last",))
    rows = []
    for batch in tqdm(as_batches(model, data, task, prompt, batch_size), desc="steer heads", disable=not progress):
        variants = {(f, s): [HeadScale(h, factor=f, positions=positions)] for f in factors for s, h in chosen.items()}
        out = lens.run_many(model, batch, variants)
        for (f, s), res in out.items():
            for i, pred, right in zip(res.ids, res.predictions(), res.correct):
                rows.append({"id": i, "factor": f, "method": "top" if s < 0 else "random", "seed": s,
                             "prediction": res.labels[int(pred)], "correct": bool(right)})
    return HeadSweep(top, pd.DataFrame(rows))
