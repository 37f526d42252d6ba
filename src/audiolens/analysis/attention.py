"""Attention by span: per layer and head, the share of the query positions' attention that lands
on each of the batch's named spans (audio, question, prefix, the rest) and on the first position
(the attention sink).

The weights are reduced inside the forward pass, layer by layer, to ``(batch, head, span)``:
nothing of size heads × tokens × tokens is kept, and only the query rows asked for are ever
formed (see :mod:`audiolens.backends.attention_rows`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..backends.attention_rows import attention_at_queries
from ..batch import AudioBatch, position_index
from ..hooked import HookedAudioLM

if TYPE_CHECKING:
    import pandas as pd

SINK = "sink"
REST = "rest"


def span_partition(batch: AudioBatch) -> tuple[list[str], Bool[Tensor, "batch seq spans"]]:
    """The batch's real positions split into disjoint spans: ``"sink"`` (each row's first real
    token), ``"audio"``, the batch's other named spans in their order, and ``"rest"`` (template
    tokens no span names). Padding belongs to none. Every real position is in exactly one.

    Example:
        >>> names, member = span_partition(batch)  # doctest: +SKIP
        >>> names  # doctest: +SKIP
        ['sink', 'audio', 'prefix', 'question', 'rest']
    """
    real = ~batch.span("padding") if "padding" in batch.spans else torch.ones(len(batch), batch.seq_len, dtype=torch.bool)
    first = real.long().argmax(1)
    sink = torch.zeros_like(real)
    sink[torch.arange(len(batch)), first] = True
    names = [SINK] + [n for n in ["audio", *batch.spans] if n in batch.spans and n != "padding"]
    names = list(dict.fromkeys(names))
    taken = sink.clone()
    parts = [sink]
    for name in names[1:]:
        part = batch.span(name) & real & ~taken
        taken |= part
        parts.append(part)
    parts.append(real & ~taken)
    return names + [REST], torch.stack(parts, dim=-1)


@dataclass
class SpanAttention:
    """``share[l, r, h, s]``: at block ``layers[l]`` (1..L), row ``r``, head ``h``, the share of
    the query positions' attention on span ``spans[s]`` (averaged over the query positions).
    Shares of a row and head sum to 1 over the spans.
    """

    layers: list[int]
    spans: list[str]
    share: Float[Tensor, "layers batch heads spans"]
    ids: list[str]
    queries: str = "last"
    heads: int = field(init=False)

    def __post_init__(self) -> None:
        if self.share.shape[0] != len(self.layers) or self.share.shape[-1] != len(self.spans):
            raise ValueError(f"share of shape {tuple(self.share.shape)} does not match "
                             f"{len(self.layers)} layers and {len(self.spans)} spans")
        if self.share.shape[1] != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids for {self.share.shape[1]} rows")
        self.heads = int(self.share.shape[2])

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def concat(cls, parts: Sequence[SpanAttention]) -> SpanAttention:
        """Rows of several batches as one result (same layers and spans).

        Spans are aligned by name; a span missing from a batch has share 0 there.
        """
        spans = list(dict.fromkeys(s for p in parts for s in p.spans))
        spans = [s for s in spans if s != REST] + [REST]
        shares = []
        for p in parts:
            if p.layers != parts[0].layers or p.heads != parts[0].heads:
                raise ValueError("results of different layers or head counts cannot be joined")
            full = torch.zeros(*p.share.shape[:3], len(spans))
            for j, s in enumerate(p.spans):
                full[..., spans.index(s)] = p.share[..., j]
            shares.append(full)
        return cls(parts[0].layers, spans, torch.cat(shares, dim=1), [i for p in parts for i in p.ids],
                   parts[0].queries)

    def of(self, span: str) -> Float[Tensor, "layers batch heads"]:
        """The share on one span, per layer, row and head."""
        if span not in self.spans:
            raise KeyError(f"unknown span {span!r}; this result has {self.spans}")
        return self.share[..., self.spans.index(span)]

    def mean(self, span: str = "audio") -> Float[np.ndarray, "layers heads"]:
        """Mean share on ``span`` over rows, per (layer, head)."""
        return self.of(span).mean(1).numpy()

    def to_frame(self, per_clip: bool = False) -> pd.DataFrame:
        """Tidy table: layer, head, span, share (mean over clips), low, high (95 % interval of
        the mean, normal approximation), n; ``per_clip=True``: one row per clip with ``id``."""
        import pandas as pd

        if per_clip:
            return pd.DataFrame([
                {"layer": layer, "head": h, "span": s, "id": i, "share": float(self.share[li, r, h, si])}
                for li, layer in enumerate(self.layers) for h in range(self.heads)
                for si, s in enumerate(self.spans) for r, i in enumerate(self.ids)
            ])
        n = len(self)
        mean = self.share.mean(1)
        half = 1.96 * self.share.std(1, unbiased=True) / np.sqrt(n) if n > 1 else torch.full_like(mean, float("nan"))
        return pd.DataFrame([
            {"layer": layer, "head": h, "span": s, "share": float(mean[li, h, si]),
             "low": float(mean[li, h, si] - half[li, h, si]), "high": float(mean[li, h, si] + half[li, h, si]), "n": n}
            for li, layer in enumerate(self.layers) for h in range(self.heads) for si, s in enumerate(self.spans)
        ])

    def plot(self, span: str = "audio", ax: Any = None) -> Any:
        """Heatmap of the mean share on ``span`` per (layer, head) (a matplotlib Figure)."""
        from .listening_plots import plot_span_attention

        return plot_span_attention(self, span, ax=ax)


class SpanAttentionRecorder:
    """Records attention by span during whatever forward pass runs inside :meth:`recording`
    (a lens run, a patched run), so it costs no pass of its own.

    Example:
        >>> rec = SpanAttentionRecorder(model, batch)  # doctest: +SKIP
        >>> with rec.recording():  # doctest: +SKIP
        ...     res = al.LogitLens(task).run(model, batch)
        >>> att = rec.result()  # doctest: +SKIP
    """

    def __init__(self, model: HookedAudioLM, batch: AudioBatch,
                 queries: str | int | Sequence[str | int] | Tensor = "last",
                 layers: Sequence[int] | None = None) -> None:
        self.model, self.batch = model, batch
        self.queries = queries if isinstance(queries, str) else str(queries)
        self.rows = position_index(batch, queries)
        if self.rows.shape[1] == 0 or not bool((self.rows >= 0).any(1).all()):
            raise ValueError(f"queries {queries!r} name no position in some row")
        chosen = list(range(1, model.n_layers + 1)) if layers is None else [int(x) for x in layers]
        bad = [x for x in chosen if not 1 <= x <= model.n_layers]
        if bad:
            raise ValueError(f"attention_to_spans: layers {bad} are outside 1..{model.n_layers} (block numbers)")
        self.layers = chosen
        self.spans, member = span_partition(batch)
        self._member = member.float()
        valid = (self.rows >= 0).float()
        self._query_weight = valid / valid.sum(1, keepdim=True)  # mean over each row's real queries
        self._shares: dict[int, Tensor] = {}

    def _reduce(self, block: int, weights: Tensor) -> None:
        # weights (batch, head, k, key) -> (batch, head, span), averaged over query rows.
        member = self._member.to(weights.device)[:, : weights.shape[-1]]
        per_query = weights.float() @ member[:, None]  # (b, h, k, spans)
        q = self._query_weight.to(weights.device)[:, None, :, None]
        self._shares[block + 1] = (per_query * q).sum(2).cpu()

    @contextlib.contextmanager
    def recording(self) -> Iterator[SpanAttentionRecorder]:
        with attention_at_queries(self.model, self.rows, self.batch.inputs["attention_mask"], self._reduce,
                                  layers=[x - 1 for x in self.layers]):
            yield self

    def result(self) -> SpanAttention:
        missing = [x for x in self.layers if x not in self._shares]
        if missing:
            raise RuntimeError(
                f"no attention was recorded for blocks {missing}: run a forward over the whole sequence inside "
                "recording() (a pass over a cached prefix or a prefix alone does not reach the query rows)")
        share = torch.stack([self._shares[x] for x in self.layers])
        return SpanAttention(self.layers, self.spans, share, list(self.batch.ids), self.queries)


@torch.no_grad()
def attention_to_spans(
    model: HookedAudioLM,
    batch: AudioBatch | Sequence[AudioBatch],
    queries: str | int | Sequence[str | int] | Tensor = "last",
    layers: Sequence[int] | None = None,
) -> SpanAttention:
    """Per layer and head, the share of attention at ``queries`` on each span of the batch.

    ``queries`` is a position or span name (``"last"``, ``"question"``), an int or a list of
    them; several positions are averaged per row. ``batch`` may be a list of batches (their rows
    are joined). One forward pass per batch, without the full-vocabulary head.

    Example:
        >>> att = al.attention_to_spans(model, batch, queries="last")  # doctest: +SKIP
        >>> att.to_frame().query("span == 'audio'").nlargest(3, "share")  # doctest: +SKIP
    """
    batches = [batch] if isinstance(batch, AudioBatch) else list(batch)
    parts = []
    for b in batches:
        rec = SpanAttentionRecorder(model, b, queries, layers)
        with rec.recording():
            model.run_backbone(b.inputs)
        parts.append(rec.result())
    return parts[0] if len(parts) == 1 else SpanAttention.concat(parts)
