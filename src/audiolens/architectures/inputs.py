"""Turning clips and a prompt into an :class:`~audiolens.batch.AudioBatch` for one family.

The default path renders the prompt with the chat template and lets the HF processor expand the
audio placeholder (:func:`processor_encode`); families whose processor cannot do that give their
own ``encode`` (see :class:`~audiolens.architectures.base.Architecture`), built on
:func:`left_pad`. Everything here reads the wrapped model only through
:class:`~audiolens.architectures.base.WrappedModel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch
from jaxtyping import Bool
from torch import Tensor

from ..audio import prepare_clips
from ..batch import FRAME_STAGES, AudioBatch, FrameAxis
from ..errors import ParameterError
from ..labels import check_labels
from ..tasks import Prompt

if TYPE_CHECKING:
    from transformers import ProcessorMixin

    from .base import WrappedModel


class PrepareOptions(TypedDict, total=False):
    """The keyword options of :func:`prepare_batch` (and ``HookedAudioLM.prepare``):
    ``label_set``, the labels ``labels`` come from when the prompt has none (or to use other
    ones); ``ids``, one id per clip (default ``"0"``, ``"1"``, ...); ``truncate``, cut a clip
    longer than the model's audio window to it instead of refusing it."""

    label_set: Sequence[str] | None
    ids: Sequence[str] | None
    truncate: bool


@dataclass
class Encoded:
    """What a family's ``encode`` returns: per-row model inputs (left-padded, with an
    ``attention_mask``) and named ``(batch, seq)`` spans, at least ``"audio"``."""

    inputs: dict[str, Tensor]
    spans: dict[str, Bool[Tensor, "batch seq"]]


#: Where a named span lies in one row: a ``(start, stop)`` range of the row's tokens, or a
#: boolean mask over them.
RowSpan = tuple[int, int] | Bool[Tensor, " len"]


def left_pad(
    rows: Sequence[Tensor],
    spans: Mapping[str, Sequence[RowSpan]] | None = None,
    fill: float = 0,
) -> tuple[Tensor, Tensor, dict[str, Bool[Tensor, "batch seq"]]]:
    """Rows of different lengths (``(len, ...)`` each) as one left-padded batch on the CPU.

    Returns the batch ``(n, width, ...)`` (padding ``fill``, the first row's dtype), its
    ``attention_mask`` ``(n, width)`` (1 on the rows' tokens) and each of ``spans`` as an
    ``(n, width)`` mask: ``spans[name][r]`` places the span within row r. Left padding because
    positions and key/value caches assume it: every row ends at the last column.

    Example:
        >>> ids, mask, spans = left_pad([torch.tensor([5, 6, 7]), torch.tensor([8])], {"a": [(1, 3), (0, 1)]})
        >>> ids.tolist(), mask.tolist(), spans["a"].tolist()
        ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]], [[False, True, True], [False, False, True]])
    """
    n, width = len(rows), max(len(row) for row in rows)
    batch = torch.full((n, width, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
    mask = torch.zeros((n, width), dtype=torch.long)
    masks = {name: torch.zeros((n, width), dtype=torch.bool) for name in spans or {}}
    for r, row in enumerate(rows):
        pad = width - len(row)
        batch[r, pad:] = row.cpu()
        mask[r, pad:] = 1
        for name, where in (spans or {}).items():
            span = where[r]
            if isinstance(span, Tensor):
                masks[name][r, pad:] = span
            else:
                start, stop = span
                masks[name][r, pad + start:pad + stop] = True
    return batch, mask, masks


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


def processor_encode(model: WrappedModel, texts: list[str], waves: list[np.ndarray]) -> Encoded:
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
    if model.audio_token_id is None:
        raise ValueError(
            f"{model.architecture.name} has no audio placeholder token, so its processor's output "
            "names no audio span: the family needs its own encode (see Architecture.encode)"
        )
    return Encoded(inputs=inputs, spans={"audio": inputs["input_ids"] == model.audio_token_id})


def frame_axes(model: WrappedModel, inputs: dict[str, Tensor], waves: Sequence[np.ndarray]) -> dict[str, FrameAxis]:
    """Each stage's :class:`~audiolens.batch.FrameAxis` for a batch, from the family's
    :class:`~audiolens.architectures.base.AudioFrames` (empty when it describes none).

    A row's mel frames are counted by the family's feature mask, else from the clip's own
    length (the padding up to the encoder's window is then not counted as audio).
    """
    frames = model.architecture.audio_frames
    features = inputs.get("input_features")
    if frames is None or features is None:
        return {}
    width = int(features.shape[-1])
    if frames.feature_mask is not None and frames.feature_mask in inputs:
        mel = inputs[frames.feature_mask].sum(-1).long()
    else:
        fe = getattr(model.processor, "feature_extractor", None)
        hop = int(getattr(fe, "hop_length", 160))
        mel = torch.tensor([len(w) // hop for w in waves], dtype=torch.long).clamp(max=width)
    lengths = frames.lengths(mel)
    widths = frames.lengths(torch.tensor([width]))
    return {stage: FrameAxis(lengths=n.long().cpu(), width=int(w), seconds=s)
            for stage, n, w, s in zip(FRAME_STAGES, lengths, widths, frames.seconds)}


def prepare_batch(
    model: WrappedModel,
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
    # Checks the list, the rates and every clip; each conversion is noted once for the batch.
    n_clips = len(audios) if isinstance(audios, Sequence) and not isinstance(audios, str) else 0
    if ids is not None and (isinstance(ids, str) or not isinstance(ids, Sequence)):
        raise ParameterError(f"ids must be a list with one id per clip, got {ids!r:.80}")
    ids = [str(i) for i in range(n_clips)] if ids is None else [str(i) for i in ids]
    waves = prepare_clips(audios, sampling_rate, model.sampling_rate, ids=ids,
                          max_seconds=model.max_audio_seconds, truncate=truncate)

    if not isinstance(prompt, Prompt):
        raise ParameterError(f"prompt must be a Prompt (e.g. task.prompt('P3')), got {prompt!r:.80}")
    label_set = check_labels(label_set) if label_set is not None else prompt.labels
    if not isinstance(truncate, bool):
        raise ParameterError(f"truncate must be True or False, got {truncate!r}")
    targets = None
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise ParameterError(f"labels must be a list with one label per clip, got {labels!r:.80}")
        if len(labels) != len(audios):
            raise ParameterError(f"{len(labels)} labels for {len(audios)} clips")
        if label_set is None:
            raise ParameterError("labels given but no label set: use a task prompt or pass label_set=")
        unknown = sorted({str(lab) for lab in labels if not isinstance(lab, str) or lab not in label_set})
        if unknown:
            raise ParameterError(f"labels {unknown} are not in the label set {list(label_set)}")
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
        frames=frame_axes(model, inputs, waves),
    )
