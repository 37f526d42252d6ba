"""Batches of (audio, prompt) rows with named token spans and positions.

A batch holds the exact keyword arguments of the HF forward (``inputs``), and per row the audio
token span, the last token and the attribute-mentioning token, all found from token ids and
tokenizer offsets, so they stay right under left padding and for any prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from .audio import check_rate, prepare_waveform
from .tasks import Prompt

if TYPE_CHECKING:
    from transformers import ProcessorMixin

    from .hooked import HookedAudioLM

# Inputs aligned with the token axis: a prefix/step split cuts them; everything else (audio
# features) belongs to the prefix alone.
TOKEN_KEYS = ("input_ids", "position_ids", "inputs_embeds")


@dataclass
class AudioBatch:
    """Model inputs plus named spans and positions, one row per (audio, prompt).

    Attributes:
        inputs: keyword arguments passed unchanged to the HF model's forward.
        spans: name -> ``(batch, seq)`` bool mask (``"audio"``: the audio placeholder tokens).
        positions: name -> ``(batch,)`` token index (``"last"``, ``"attribute"``).
        targets: ``(batch,)`` index of each row's label in ``label_set``, or None.
        label_set: the labels ``targets`` index into.
        ids: one identifier per row.
        prompt: the prompt every row was rendered with.

    Example:
        >>> batch = model.prepare(audios=[wav], sampling_rate=16000, prompt=task.prompt("P3"),
        ...                       labels=["female"])  # doctest: +SKIP
        >>> batch.positions["last"], batch.spans["audio"].sum(1)  # doctest: +SKIP
    """

    inputs: dict[str, Tensor]
    spans: dict[str, Bool[Tensor, "batch seq"]]
    positions: dict[str, Int[Tensor, " batch"]]
    prompt: Prompt
    targets: Int[Tensor, " batch"] | None = None
    label_set: tuple[str, ...] | None = None
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.inputs["attention_mask"].shape[0]
        if n == 0:
            raise ValueError("a batch needs at least one row")
        # Every input is per row, so that subsets and shards are plain indexing.
        ragged = [k for k, v in self.inputs.items() if v.shape[0] != n]
        if ragged:
            raise ValueError(f"inputs {ragged} do not have one entry per row ({n} rows)")
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for a batch of {n} rows")
        if self.targets is not None and self.targets.shape != (n,):
            raise ValueError(f"targets must have shape ({n},), got {tuple(self.targets.shape)}")

    def __len__(self) -> int:
        return self.inputs["attention_mask"].shape[0]

    @property
    def seq_len(self) -> int:
        return self.inputs["attention_mask"].shape[1]

    def position(self, where: str | int | Tensor) -> Int[Tensor, " batch"]:
        """Per-row token index for a named position, an int (negative counts from the end) or
        a ``(batch,)`` tensor."""
        if isinstance(where, str):
            try:
                return self.positions[where]
            except KeyError:
                raise KeyError(
                    f"unknown position {where!r}; this batch has {sorted(self.positions)}"
                ) from None
        if isinstance(where, int):
            idx = where if where >= 0 else self.seq_len + where
            if not 0 <= idx < self.seq_len:
                raise IndexError(f"position {where} is outside a sequence of {self.seq_len}")
            padded = torch.nonzero(self.spans["padding"][:, idx]).flatten().tolist() if "padding" in self.spans else []
            if padded:
                raise IndexError(
                    f"position {where} is padding in rows {padded} (rows are left-padded); use a "
                    "named position or span, or a per-row index tensor"
                )
            return torch.full((len(self),), idx, dtype=torch.long)
        where = torch.as_tensor(where, dtype=torch.long)
        if where.shape != (len(self),):
            raise ValueError(f"a position tensor must have shape ({len(self)},)")
        return where

    def span_index(self, name: str) -> Int[Tensor, "batch k"]:
        """Every position of span ``name`` per row, in order, padded with -1 to the longest row.

        Example:
            >>> batch.span_index("audio").shape  # doctest: +SKIP
            torch.Size([4, 62])
        """
        mask = self.span(name)
        counts = mask.sum(1)
        index = torch.full((len(self), int(counts.max())), -1, dtype=torch.long)
        for row in range(len(self)):
            where = mask[row].nonzero().flatten()
            index[row, : len(where)] = where
        return index

    def span(self, where: str | Tensor | Sequence[int]) -> Bool[Tensor, "batch seq"]:
        """A ``(batch, seq)`` key mask from a span name, explicit positions or a mask."""
        if isinstance(where, str):
            try:
                return self.spans[where]
            except KeyError:
                raise KeyError(f"unknown span {where!r}; this batch has {sorted(self.spans)}") from None
        where = torch.as_tensor(where)
        if where.dtype == torch.bool:
            if where.shape != (len(self), self.seq_len):
                raise ValueError(f"a span mask must have shape ({len(self)}, {self.seq_len})")
            return where
        mask = torch.zeros(len(self), self.seq_len, dtype=torch.bool)
        mask[:, where.long()] = True
        return mask

    def subset(self, index: Sequence[int] | Tensor | np.ndarray) -> AudioBatch:
        """The rows ``index`` (ints or a bool mask) as a new batch."""
        index = torch.as_tensor(np.asarray(index))
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        rows = index.tolist()
        return replace(
            self,
            inputs={k: v[index] for k, v in self.inputs.items()},
            spans={k: v[index] for k, v in self.spans.items()},
            positions={k: v[index] for k, v in self.positions.items()},
            targets=None if self.targets is None else self.targets[index],
            ids=[self.ids[i] for i in rows],
        )

    def to(self, device: str | torch.device) -> AudioBatch:
        """The batch with its model inputs on ``device`` (spans and positions stay on CPU)."""
        return replace(self, inputs={k: v.to(device) for k, v in self.inputs.items()})

    def chunk(self, start: int, end: int) -> dict[str, Tensor]:
        """Model inputs for tokens ``start:end`` on top of a key/value cache holding the tokens
        before ``start``: the attention mask covers ``0:end``, and the audio features come only
        with the chunk that starts at 0 (the audio is encoded once).

        Example:
            >>> prefix, step = batch.chunk(0, batch.seq_len - 1), batch.chunk(batch.seq_len - 1, batch.seq_len)  # doctest: +SKIP
        """
        if not 0 <= start < end <= self.seq_len:
            raise ValueError(f"chunk {start}:{end} is outside a sequence of {self.seq_len}")
        out = {k: v[:, start:end] for k, v in self.inputs.items() if k in TOKEN_KEYS}
        out["attention_mask"] = self.inputs["attention_mask"][:, :end]
        if start == 0:
            out.update({k: v for k, v in self.inputs.items() if k not in out and k not in TOKEN_KEYS})
        return out


@dataclass
class Encoded:
    """What a family's ``encode`` returns: per-row model inputs (left-padded, with an
    ``attention_mask``) and named ``(batch, seq)`` spans, at least ``"audio"``."""

    inputs: dict[str, Tensor]
    spans: dict[str, Bool[Tensor, "batch seq"]]


def render_prompt(processor: ProcessorMixin, prompt: Prompt) -> str:
    """The chat-template text for one row: audio (and question) in the user turn, then the
    probing prefix as the start of the assistant turn, with no end-of-turn token after it."""
    # The template may live on the processor or only on its tokenizer: render with its owner.
    owner = next((o for o in (processor, getattr(processor, "tokenizer", None))
                  if getattr(o, "chat_template", None)), None)
    if owner is None:
        raise ValueError(
            f"{type(processor).__name__} has no chat template, so the prompt cannot be rendered "
            "the way the model was trained; set processor.chat_template (see the model card)"
        )
    content: list[dict] = [{"type": "audio", "audio": "<audio>"}]
    if prompt.question:
        content.append({"type": "text", "text": prompt.question})
    messages = [{"role": "user", "content": content}]
    text = owner.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + prompt.prefix


def _token_ends(tokenizer, ids: list[int], text: str) -> list[int]:
    """Character offset in ``text`` where each token of ``ids`` ends.

    Fast tokenizers report offsets; for the others (e.g. tiktoken-based ones) the end of token
    i is the length of the decoded text of tokens 0..i.
    """
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [b for _, b in enc["offset_mapping"]]
    return [len(tokenizer.decode(ids[: i + 1])) for i in range(len(ids))]


def tail_offsets(tokenizer, text: str, start: int, end: int) -> list[int]:
    """For the tokens of ``text`` overlapping characters ``start:end``: how many tokens before
    the last token of ``text`` each sits (the audio placeholder may expand to any number of
    tokens, but everything after it keeps its distance from the end).

    Example:
        >>> from audiolens.models.tiny import build_tokenizer
        >>> text = "Audio: the speaker's gender is"
        >>> tail_offsets(build_tokenizer(), text, text.index("gender"), text.index("gender") + 6)
        [1]
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ends = _token_ends(tokenizer, ids, text)
    starts = [0, *ends[:-1]]
    hits = [i for i, (a, b) in enumerate(zip(starts, ends)) if a < end and b > start]
    return [len(ids) - 1 - i for i in hits]


def attribute_offset(tokenizer, text: str, prompt: Prompt) -> int:
    """How many tokens before the last one the attribute word's last token sits in ``text``
    (which ends with ``prompt.prefix``)."""
    word_start = len(text) - len(prompt.prefix) + prompt.prefix.rindex(prompt.attribute_word)
    offsets = tail_offsets(tokenizer, text, word_start, word_start + len(prompt.attribute_word))
    if not offsets:
        raise ValueError(f"attribute word {prompt.attribute_word!r} not found among the tokens")
    return offsets[-1]


def text_spans(tokenizer, text: str, prompt: Prompt, n_rows: int, seq_len: int) -> dict[str, Tensor]:
    """``"question"`` (when the prompt has one, after the audio) and ``"prefix"`` (the
    assistant's probing prefix) as ``(batch, seq)`` masks of a left-padded batch."""
    spans = {}
    prefix_start = len(text) - len(prompt.prefix)
    ranges = {"prefix": (prefix_start, len(text))}
    if prompt.question and prompt.question in text[:prefix_start]:
        q = text[:prefix_start].rindex(prompt.question)
        ranges["question"] = (q, q + len(prompt.question))
    for name, (a, b) in ranges.items():
        mask = torch.zeros(n_rows, seq_len, dtype=torch.bool)
        mask[:, [seq_len - 1 - o for o in tail_offsets(tokenizer, text, a, b)]] = True
        spans[name] = mask
    return spans


def audio_window(processor: ProcessorMixin) -> tuple[int, float | None]:
    """The processor's sampling rate and the longest clip (seconds) one audio window holds
    (None where the feature extractor sets no limit)."""
    # transformers names the audio component feature_extractor or (Granite, Phi-4) audio_processor.
    fe = getattr(processor, "feature_extractor", None) or getattr(processor, "audio_processor", None)
    if fe is None:
        raise ValueError(f"{type(processor).__name__} has no feature extractor (audio component)")
    rate = int(fe.sampling_rate)
    samples = getattr(fe, "n_samples", None)
    if samples is None and getattr(fe, "chunk_length", None):
        samples = fe.chunk_length * rate
    return rate, (None if samples is None else samples / rate)


def processor_encode(model: HookedAudioLM, texts: list[str], waves: list[np.ndarray]) -> Encoded:
    """Default ``encode``: the HF processor expands the audio placeholder and extracts features.

    Padding is asked of the text alone: passed to the whole processor it would also reach the
    feature extractor, which would then pad to the longest clip instead of its fixed window.
    """
    processor = model.processor
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # positions and caches assume left padding
    try:
        enc = processor(
            text=texts, audio=waves, sampling_rate=model.sampling_rate, return_tensors="pt",
            text_kwargs={"padding": True},
        )
    finally:
        tokenizer.padding_side = side
    inputs = {k: v for k, v in enc.items() if isinstance(v, Tensor)}
    return Encoded(inputs=inputs, spans={"audio": inputs["input_ids"] == model.audio_token_id})


def prepare_batch(
    model: HookedAudioLM,
    audios: Sequence[np.ndarray | Tensor],
    sampling_rate: int | Sequence[int],
    prompt: Prompt,
    labels: Sequence[str] | None = None,
    *,
    label_set: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    truncate: bool = False,
) -> AudioBatch:
    """Check, resample and encode ``audios`` with ``prompt``; see ``HookedAudioLM.prepare``."""
    if len(audios) == 0:
        raise ValueError("prepare needs at least one audio clip")
    if isinstance(sampling_rate, Sequence):
        rates = list(sampling_rate)
    else:
        rates = [sampling_rate] * len(audios)
    if len(rates) != len(audios):
        raise ValueError(f"{len(rates)} sampling rates for {len(audios)} clips")
    ids = [str(i) for i in range(len(audios))] if ids is None else [str(i) for i in ids]
    target_rate, max_seconds = model.sampling_rate, model.max_audio_seconds
    waves = [
        prepare_waveform(a, check_rate(sr, name=f"clip {i!r}"), target_rate, name=f"clip {i!r}", max_seconds=max_seconds,
                         truncate=truncate)
        for a, sr, i in zip(audios, rates, ids)
    ]

    label_set = tuple(label_set) if label_set is not None else prompt.labels
    targets = None
    if labels is not None:
        if len(labels) != len(audios):
            raise ValueError(f"{len(labels)} labels for {len(audios)} clips")
        if label_set is None:
            raise ValueError("labels given but no label set: use a task prompt or pass label_set=")
        unknown = sorted({lab for lab in labels if lab not in label_set})
        if unknown:
            raise ValueError(f"labels {unknown} are not in the label set {list(label_set)}")
        targets = torch.tensor([label_set.index(lab) for lab in labels], dtype=torch.long)

    text = (model.architecture.render or render_prompt)(model.processor, prompt)
    encode = model.architecture.encode or processor_encode
    enc = encode(model, [text] * len(waves), waves)
    inputs = dict(enc.inputs)
    mask = inputs["attention_mask"]
    # Explicit position ids make a left-padded row compute exactly what it computes alone.
    inputs.setdefault("position_ids", (mask.long().cumsum(-1) - 1).clamp(min=0))

    audio = enc.spans["audio"]
    if not audio.any(dim=1).all():
        raise ValueError(
            "some rows have no audio tokens: the chat template dropped the audio, or the clip "
            "is too short to give the encoder one frame"
        )
    last = torch.full((len(waves),), mask.shape[1] - 1, dtype=torch.long)
    attribute = last - attribute_offset(model.tokenizer, text, prompt)
    spans = {**text_spans(model.tokenizer, text, prompt, len(waves), mask.shape[1]), **enc.spans}
    if "question" in spans and (spans["question"] & audio).any():
        spans.pop("question")  # the question came before the audio: no fixed distance to the end
    return AudioBatch(
        inputs=inputs,
        spans={**spans, "padding": mask == 0},
        positions={"last": last, "attribute": attribute},
        prompt=prompt,
        targets=targets,
        label_set=label_set,
        ids=ids,
    )


Positions = str | int | Sequence[str | int] | Tensor | None


def position_index(batch: AudioBatch | dict[str, Tensor], positions: Positions) -> Int[Tensor, "batch k"]:
    """Resolve ``positions`` to a ``(batch, k)`` token index.

    ``positions`` is a position name (``"last"``, ``"attribute"``), a span name (``"audio"``,
    ``"question"``, any span of the batch: every position of the span in each row, rows with
    fewer positions padded with -1), an int (negative counts from the end), a list of these, or
    an index tensor.

    Example:
        >>> idx = position_index(batch, ["audio", "last"])  # doctest: +SKIP
    """
    if isinstance(positions, Tensor):
        return positions.long().reshape(positions.shape[0], -1)
    items = [positions] if isinstance(positions, (str, int)) else list(positions)
    if isinstance(batch, AudioBatch):
        parts = [batch.span_index(p) if isinstance(p, str) and p in batch.spans and p not in batch.positions
                 else batch.position(p)[:, None] for p in items]
        return torch.cat(parts, dim=1)
    if all(isinstance(p, int) for p in items):
        seq = batch["input_ids"].shape[1]
        idx = torch.tensor([p if p >= 0 else seq + p for p in items], dtype=torch.long)
        return idx[None].expand(batch["input_ids"].shape[0], -1)
    raise ValueError("named positions need an AudioBatch (made by model.prepare)")


def gather_positions(
    act: Float[Tensor, "batch seq *rest"], index: Int[Tensor, "batch k"]
) -> Float[Tensor, "batch k *rest"]:
    """``act[b, index[b, j]]`` for every row b and asked position j; NaN where ``index`` is -1
    (a row whose span is shorter than the longest)."""
    rows = torch.arange(act.shape[0], device=act.device)[:, None]
    index = index.to(act.device)
    out = act[rows, index.clamp(min=0)]
    missing = index < 0
    if missing.any():
        out = out.masked_fill(missing.reshape(*missing.shape, *[1] * (out.ndim - 2)), float("nan"))
    return out


def shared_prefix(batches: Sequence[AudioBatch]) -> int:
    """How many leading positions every batch shares exactly (same rows, audio, tokens, mask
    and positions), provided that covers all of their audio; 0 otherwise.

    Prompts that differ only after the audio (the formats P1–P3) share everything up to the
    end of the audio, so that part can be computed once.
    """
    first = batches[0]
    for b in batches[1:]:
        if len(b) != len(first) or b.ids != first.ids:
            return 0
        same_audio = set(b.inputs) == set(first.inputs) and all(
            torch.equal(b.inputs[k], first.inputs[k]) for k in b.inputs if k not in TOKEN_KEYS and k != "attention_mask")
        if not same_audio:
            return 0
    n = min(b.seq_len for b in batches)
    keys = [k for k in ("input_ids", "inputs_embeds", "attention_mask", "position_ids") if k in first.inputs]
    shared = n
    for b in batches[1:]:
        for k in keys:
            differs = (b.inputs[k][:, :n] != first.inputs[k][:, :n])
            differs = differs.reshape(differs.shape[0], n, -1).any(-1).any(0) if differs.ndim > 2 else differs.any(0)
            where = differs.nonzero()
            if len(where):
                shared = min(shared, int(where[0]))
    audio_end = max(int(b.span("audio").nonzero()[:, 1].max()) for b in batches) + 1
    return shared if shared >= audio_end else 0
