"""Batches of (audio, prompt) rows with named token spans and positions.

A batch holds the exact keyword arguments of the HF forward (``inputs``), and per row the audio
token span, the last token and the attribute-mentioning token, all found from token ids and
tokenizer offsets, so they stay right under left padding and for any prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from .errors import BatchError, PositionError
from .tasks import Prompt

#: The stages of the audio path whose frames a batch counts: the encoder's layers (and
#: ``encoder.hook_embed``), the audio tower's output (``encoder.hook_out``), the projector's
#: audio tokens (``projector.hook_out``).
FRAME_STAGES = ("encoder", "encoder_out", "projector")


def frame_stage(name: str) -> str:
    """The frame stage (:data:`FRAME_STAGES`) of a whole-model hook name, or a stage name itself.

    Example:
        >>> frame_stage("encoder.blocks.3.hook_resid_post"), frame_stage("projector.hook_out")
        ('encoder', 'projector')
    """
    if name in FRAME_STAGES:
        return name
    if name == "encoder.hook_out":
        return "encoder_out"
    if name.startswith("encoder."):
        return "encoder"
    if name.startswith("projector."):
        return "projector"
    raise KeyError(f"{name!r} is not an encoder or projector hook; frames exist for {list(FRAME_STAGES)} "
                   "and the hooks encoder.hook_embed, encoder.blocks.{l}.hook_resid_post, "
                   "encoder.hook_out, projector.hook_out")


@dataclass(frozen=True)
class FrameAxis:
    """The frame axis of one stage of the audio path: each row's count of valid frames (the
    rest is padding of shorter clips), the width of the activations, and one frame's duration.

    Example:
        >>> axis = FrameAxis(lengths=torch.tensor([3, 1]), width=4, seconds=0.02)
        >>> axis.mask().tolist()
        [[True, True, True, False], [True, False, False, False]]
    """

    lengths: Int[Tensor, " batch"]
    width: int
    seconds: float

    def mask(self) -> Bool[Tensor, "batch frames"]:
        """True at each row's valid frames."""
        return torch.arange(self.width)[None, :] < self.lengths[:, None]

    def starts(self) -> Float[Tensor, "batch frames"]:
        """Start time in seconds of every frame, NaN at padding."""
        times = (torch.arange(self.width, dtype=torch.float64) * self.seconds).float()
        return times.expand(len(self.lengths), -1).masked_fill(~self.mask(), float("nan"))


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
        frames: stage -> :class:`FrameAxis` of the audio path (empty for a family that does not
            describe its frames); read it with :meth:`frame_mask` and :meth:`frame_seconds`.

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
    frames: dict[str, FrameAxis] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.inputs["attention_mask"].shape[0]
        if n == 0:
            raise BatchError("a batch needs at least one row")
        # Every input is per row, so that subsets and shards are plain indexing.
        ragged = [k for k, v in self.inputs.items() if v.shape[0] != n]
        if ragged:
            raise BatchError(f"inputs {ragged} do not have one entry per row ({n} rows)")
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise BatchError(f"{len(self.ids)} ids for a batch of {n} rows")
        if self.targets is not None and self.targets.shape != (n,):
            raise BatchError(f"targets must have shape ({n},), got {tuple(self.targets.shape)}")

    def __len__(self) -> int:
        return self.inputs["attention_mask"].shape[0]

    def frame_axis(self, name: str) -> FrameAxis:
        """The :class:`FrameAxis` of an encoder or projector hook name (or a stage name)."""
        stage = frame_stage(name)
        if stage not in self.frames:
            raise KeyError(
                f"this batch counts no frames for {name!r}: its model's architecture describes no "
                "audio frames (Architecture(audio_frames=...)), or the batch was not made by model.prepare"
            )
        return self.frames[stage]

    def frame_mask(self, name: str) -> Bool[Tensor, "batch frames"]:
        """True at the frames of each row that come from its clip, for an encoder or projector
        hook's ``(batch, frames, d)`` activation; padding of shorter clips is False.

        Example:
            >>> mask = batch.frame_mask("encoder.blocks.0.hook_resid_post")  # doctest: +SKIP
            >>> per_clip = cache["encoder.blocks.0.hook_resid_post"][mask]  # doctest: +SKIP
        """
        return self.frame_axis(name).mask()

    def frame_seconds(self, name: str) -> Float[Tensor, "batch frames"]:
        """Start time in seconds (from the clip's start) of every frame of an encoder or
        projector hook's activation; NaN at padding. For ``projector.hook_out`` these are the
        times of the audio tokens.

        Example:
            >>> batch.frame_seconds("projector.hook_out")[0, :3]  # doctest: +SKIP
            tensor([0.0000, 0.0400, 0.0800])
        """
        return self.frame_axis(name).starts()

    def token_seconds(self) -> Float[Tensor, "batch seq"]:
        """Start time in seconds (from the clip's start) of every audio token at its position in
        the token sequence; NaN at every other position, and at audio rows past the clip's end
        (a family that reads its window's silence as audio).

        Example:
            >>> t = batch.token_seconds()  # doctest: +SKIP
            >>> t[batch.span("audio")][:3]  # doctest: +SKIP
            tensor([0.0000, 0.0400, 0.0800])
        """
        axis = self.frame_axis("projector")
        out = torch.full((len(self), self.seq_len), float("nan"))
        audio = self.span("audio")
        for row in range(len(self)):
            where = audio[row].nonzero().flatten()
            n = min(len(where), int(axis.lengths[row]))
            out[row, where[:n]] = (torch.arange(n, dtype=torch.float64) * axis.seconds).float()
        return out

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
                raise PositionError(
                    f"unknown position {where!r}; this batch has {sorted(self.positions)} "
                    f"(and the spans {sorted(self.spans)} where a span is taken)"
                ) from None
        if isinstance(where, int):
            idx = where if where >= 0 else self.seq_len + where
            if not 0 <= idx < self.seq_len:
                raise PositionError(f"position {where} is outside a sequence of {self.seq_len}")
            padded = torch.nonzero(self.spans["padding"][:, idx]).flatten().tolist() if "padding" in self.spans else []
            if padded:
                raise PositionError(
                    f"position {where} is padding in rows {padded} (rows are left-padded); use a "
                    "named position or span, or a per-row index tensor"
                )
            return torch.full((len(self),), idx, dtype=torch.long)
        if isinstance(where, bool) or not isinstance(where, (Tensor, np.ndarray, Sequence)):
            raise PositionError(f"a position is a name, an int or a ({len(self)},) index tensor, got {where!r:.80}")
        try:
            where = torch.as_tensor(where, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError):
            raise PositionError(f"a position is a name, an int or a ({len(self)},) index tensor, got {where!r:.80}") from None
        if where.shape != (len(self),):
            raise PositionError(f"a position tensor must have shape ({len(self)},)")
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

    def span(self, where: str | Sequence[str] | Tensor | Sequence[int]) -> Bool[Tensor, "batch seq"]:
        """A ``(batch, seq)`` key mask from a span name, several names (their union), explicit
        positions or a mask."""
        if isinstance(where, str):
            try:
                return self.spans[where]
            except KeyError:
                raise PositionError(f"unknown span {where!r}; this batch has {sorted(self.spans)}") from None
        if isinstance(where, (list, tuple)) and where and all(isinstance(w, str) for w in where):
            return torch.stack([self.span(w) for w in where]).any(dim=0)
        try:
            where = torch.as_tensor(where)
        except (TypeError, ValueError, RuntimeError):
            raise PositionError(f"a span is a name, names, positions or a (batch, seq) mask, got {where!r:.80}") from None
        if where.dtype == torch.bool:
            if where.shape != (len(self), self.seq_len):
                raise PositionError(f"a span mask must have shape ({len(self)}, {self.seq_len})")
            return where
        if where.is_floating_point() or where.is_complex() or where.ndim > 1 \
                or ((where < -self.seq_len) | (where >= self.seq_len)).any():
            raise PositionError(f"span positions must be token indices within 0..{self.seq_len - 1}, got {where.tolist()!r:.80}")
        mask = torch.zeros(len(self), self.seq_len, dtype=torch.bool)
        mask[:, where.long()] = True
        return mask

    def subset(self, index: Sequence[int] | Tensor | np.ndarray) -> AudioBatch:
        """The rows ``index`` (ints or a bool mask) as a new batch; :class:`BatchError` when it
        selects no row or names a row the batch does not have."""
        arr = np.asarray(index.cpu() if isinstance(index, Tensor) else index)
        n = len(self)
        if arr.dtype == np.bool_:
            if arr.shape != (n,):
                raise BatchError(f"a row mask must have shape ({n},), got {arr.shape}")
            arr = np.flatnonzero(arr)
        if arr.size == 0:
            raise BatchError("subset selects no rows; a batch needs at least one row")
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise BatchError(f"subset takes row numbers (ints) or a bool mask, got {index!r:.80}")
        if ((arr < -n) | (arr >= n)).any():
            raise BatchError(f"rows {arr[(arr < -n) | (arr >= n)].tolist()} are outside a batch of {n}")
        index = torch.as_tensor(arr % n, dtype=torch.long)
        rows = index.tolist()
        return replace(
            self,
            inputs={k: v[index] for k, v in self.inputs.items()},
            spans={k: v[index] for k, v in self.spans.items()},
            positions={k: v[index] for k, v in self.positions.items()},
            targets=None if self.targets is None else self.targets[index],
            ids=[self.ids[i] for i in rows],
            frames={k: replace(v, lengths=v.lengths[index]) for k, v in self.frames.items()},
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


Positions = str | int | Sequence[str | int] | Tensor | None


def position_index(
    batch: AudioBatch | dict[str, Tensor], positions: str | int | Sequence[str | int] | Tensor
) -> Int[Tensor, "batch k"]:
    """Resolve ``positions`` to a ``(batch, k)`` token index.

    ``positions`` is a position name (``"last"``, ``"attribute"``), a span name (``"audio"``,
    ``"question"``, any span of the batch: every position of the span in each row, rows with
    fewer positions padded with -1), an int (negative counts from the end), a list of these, or
    an index tensor.

    Example:
        >>> idx = position_index(batch, ["audio", "last"])  # doctest: +SKIP
    """
    if isinstance(positions, Tensor):
        if positions.ndim not in (1, 2) or positions.is_floating_point() or positions.is_complex():
            raise PositionError(f"a position tensor holds token indices, shaped (batch,) or (batch, k); "
                                f"got dtype {positions.dtype} and shape {tuple(positions.shape)}")
        return positions.long().reshape(positions.shape[0], -1)
    if isinstance(positions, (str, int)) and not isinstance(positions, bool):
        items = [positions]
    elif isinstance(positions, (list, tuple)) and positions and all(
            isinstance(p, (str, int, Tensor)) and not isinstance(p, bool) for p in positions):
        items = list(positions)
    else:
        raise PositionError(f"positions are a name, an int, a non-empty list of them, or a (batch, k) index "
                            f"tensor; got {positions!r:.80}")
    if isinstance(batch, AudioBatch):
        parts = [batch.span_index(p) if isinstance(p, str) and p in batch.spans and p not in batch.positions
                 else batch.position(p)[:, None] for p in items]
        return torch.cat(parts, dim=1)
    ints = [p for p in items if isinstance(p, int)]
    if len(ints) == len(items):
        seq = batch["input_ids"].shape[1]
        idx = torch.tensor([p if p >= 0 else seq + p for p in ints], dtype=torch.long)
        return idx[None].expand(batch["input_ids"].shape[0], -1)
    raise PositionError("named positions need an AudioBatch (made by model.prepare)")


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
