"""Interventions: declarative edits that attach to the wrapper's named hook points.

An intervention says which hook points it writes and returns TransformerLens-style
``(hook_name, fn)`` pairs for one batch. Any list of them runs in one forward pass; two that
write the same hook point raise :class:`InterventionConflict` unless both commute there
(attention masks do: their intersection does not depend on order).

Layer numbers follow the paper: ℓ = 1..L is decoder block ℓ (its attention for masks, its output
for residuals) and ℓ = 0 is the embedding output.

A user-written intervention is a subclass (below) or a plain ``(hook_name, fn)`` pair::

    class ZeroAudio(Intervention):
        def __init__(self, layer): self.layer = layer
        def writes(self, model): return [model.resid_name(self.layer)]
        def hooks(self, model, batch):
            audio = batch.span("audio")
            def fn(act, hook):
                return act.masked_fill(audio[..., None].to(act.device), 0.0)
            return [(model.resid_name(self.layer), fn)]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from .batch import position_index
from .checks import finite_number, layer_numbers
from .errors import (
    HookUnavailable,
    ParameterError,
    ReferenceMismatch,
    UnknownHeadError,
    UnknownHookError,
)
from .errors import InterventionConflict as InterventionConflict

if TYPE_CHECKING:
    from .backends.model import HookedModel
    from .batch import AudioBatch

HookFn = Callable[[Tensor, Any], Tensor | None]


class Intervention(ABC):
    """Base class: declare the hook points you write, return hooks for a batch."""

    #: True if several interventions of this kind may write the same hook in any order.
    commutes: bool = False

    @abstractmethod
    def writes(self, model: HookedModel) -> list[str]:
        """Names of the hook points whose activations this intervention changes."""

    @abstractmethod
    def hooks(self, model: HookedModel, batch: AudioBatch) -> list[tuple[str, HookFn]]:
        """``(hook_name, fn(activation, hook) -> new activation or None)`` pairs.

        With a prefix cache a forward may cover only the newest tokens: position ``p`` of the
        batch is then ``p - model.chunk_start`` in the activation.
        """

    def last_token_only(self, batch: AudioBatch) -> bool:
        """True if this changes nothing before the last token, so runs that differ only in
        such interventions may share the prefix's key/value cache. Say False when unsure."""
        return False

    def changes_nothing(self) -> bool:
        """True if this leaves every activation as it is (e.g. ``Enrich`` with λ = 0), so that
        a variant of such interventions alone equals the plain run. Say False when unsure."""
        return False


@dataclass
class HookIntervention(Intervention):
    """A plain function on one hook point: ``fn(activation, hook, batch)``.

    Example:
        >>> def silence(act, hook, batch):
        ...     return act.masked_fill(batch.span("audio")[..., None].to(act.device), 0.0)
        >>> zero = HookIntervention("blocks.1.hook_resid_post", silence)
    """

    name: str
    fn: Callable[[Tensor, Any, AudioBatch], Tensor | None]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ParameterError(f"HookIntervention: name must be a hook name (str), got {self.name!r}")
        if not callable(self.fn):
            raise ParameterError(f"HookIntervention: fn must be callable as fn(act, hook, batch), got {self.fn!r}")

    def writes(self, model: HookedModel) -> list[str]:
        return [self.name]

    def hooks(self, model: HookedModel, batch: AudioBatch) -> list[tuple[str, HookFn]]:
        def fn(act: Tensor, hook: Any) -> Tensor | None:
            return self.fn(act, hook, batch)

        fn.__qualname__ = getattr(self.fn, "__qualname__", type(self.fn).__name__)  # errors name the user's function
        return [(self.name, fn)]


def _layers(model: HookedModel, layers: Iterable[int] | None, what: str) -> list[int]:
    if layers is None:
        return list(range(1, model.n_layers + 1))
    return layer_numbers(layers, f"{what} layers (block numbers)", low=1, high=model.n_layers)


@dataclass
class AudioMask(Intervention):
    """RQ4: the ``queries`` positions cannot attend to the ``keys`` span in self-attention.

    Args:
        keys: a span name (``"audio"``, or any span the batch names), a tuple of names (their
            union), explicit positions, or a ``(batch, seq)`` bool mask.
        queries: the query position(s): names or ints (default: the last token).
        layers: block numbers 1..L whose attention is masked (default: all).

    Every other query position computes exactly what it computes without the mask.

    Example:
        >>> masked = LogitLens(task).run(model, batch, interventions=[AudioMask()])  # doctest: +SKIP
    """

    keys: Any = "audio"
    queries: Any = "last"
    layers: Iterable[int] | None = None
    commutes = True

    def __post_init__(self) -> None:
        # Checked here: a layer of 2.5 would otherwise mask block 2 without a word.
        if self.layers is not None:
            self.layers = tuple(layer_numbers(self.layers, "AudioMask layers"))  # range: at run
        _check_where(self.queries, "AudioMask queries")

    def writes(self, model: HookedModel) -> list[str]:
        return [f"blocks.{layer - 1}.hook_attn_mask" for layer in _layers(model, self.layers, "AudioMask")]

    def last_token_only(self, batch: AudioBatch) -> bool:
        return bool((position_index(batch, self.queries) == batch.position("last")[:, None]).all())

    def hooks(self, model: HookedModel, batch: AudioBatch) -> list[tuple[str, HookFn]]:
        keys = batch.span(self.keys)
        rows = position_index(batch, self.queries)
        query_mask = torch.zeros_like(keys)
        query_mask[torch.arange(len(batch))[:, None], rows] = True
        blocked = query_mask[:, :, None] & keys[:, None, :]  # (b, q, k)
        if not blocked.any():
            return []  # nothing to mask: leave the run untouched

        def fn(mask: Tensor, hook: Any) -> Tensor:
            q_len, k_len = mask.shape[-2:]
            past = k_len - q_len  # with a key/value cache only the newest queries are here
            return mask & ~blocked[:, None, past:k_len, :k_len].to(mask.device)

        return [(name, fn) for name in self.writes(model)]


@dataclass
class Enrich(Intervention):
    """Eq. 5: ``h[target] += scale · h[source]`` at ``position``, from the same forward pass.

    Args:
        source_layer: ℓ̄ (0..L-1), or one layer per batch row (the random-layer baseline).
        scale: λ.
        target_layer: default ``source_layer + 5``; must be ≤ L.
        position: where to add (default: the last token).

    Example:
        >>> enriched = LogitLens(task).run(model, batch,
        ...     interventions=[Enrich(source_layer=12, scale=0.3)])  # doctest: +SKIP
    """

    source_layer: int | Sequence[int] | np.ndarray
    scale: float
    target_layer: int | Sequence[int] | np.ndarray | None = None
    position: str | int = "last"
    gap: int = 5

    def __post_init__(self) -> None:
        # Checked here, not at run time: a NaN λ gives NaN logits and a layer of 1.7 would
        # silently become 1.
        finite_number(self.scale, "Enrich: scale")
        _check_where(self.position, "Enrich: position")
        self._whole_layers(self.source_layer, "source_layer")
        if self.target_layer is not None:
            self._whole_layers(self.target_layer, "target_layer")
        gap = self._whole_layers(self.gap, "gap")
        if gap.size != 1 or int(gap[0]) < 1:
            raise ParameterError(f"Enrich: gap must be one positive whole number, got {self.gap!r}")

    @staticmethod
    def _whole_layers(value: Any, what: str) -> np.ndarray:
        """``value`` as a 1-D int array, or an error naming ``what`` for non-integral layers."""
        try:
            arr = np.atleast_1d(np.asarray(value.cpu() if isinstance(value, Tensor) else value))
        except (ValueError, TypeError):
            raise ParameterError(f"Enrich: {what} must be one layer or one per row, got {value!r}") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ParameterError(f"Enrich: {what} must be one layer or one per row, got {value!r}")
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise ParameterError(f"Enrich: {what} must be whole layer numbers, got {value!r}")
        integral = np.issubdtype(arr.dtype, np.integer) or (
            np.isfinite(arr).all() and (arr == np.round(arr)).all()
        )
        if not integral:
            raise ParameterError(f"Enrich: {what} must be whole layer numbers, got {value!r}")
        return arr.astype(int)

    def _pairs(self, model: HookedModel, n_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        src = np.atleast_1d(np.asarray(self.source_layer, dtype=int))
        tgt = src + self.gap if self.target_layer is None else np.atleast_1d(np.asarray(self.target_layer, dtype=int))
        if n_rows is not None:
            if len(src) not in (1, n_rows) or len(tgt) not in (1, n_rows):
                raise ParameterError(f"Enrich: give one layer or one per row ({n_rows} rows)")
            src, tgt = np.broadcast_to(src, (n_rows,)), np.broadcast_to(tgt, (n_rows,))
        if (src < 0).any() or (tgt > model.n_layers).any() or (tgt <= src).any():
            raise ParameterError(
                f"Enrich: need 0 <= source < target <= {model.n_layers} (the model's layers); "
                f"got source {src.tolist()} and target {tgt.tolist()}"
            )
        return src, tgt

    def writes(self, model: HookedModel) -> list[str]:
        return sorted({model.resid_name(int(t)) for t in self._pairs(model)[1]})

    def last_token_only(self, batch: AudioBatch) -> bool:
        return bool((batch.position(self.position) == batch.position("last")).all())

    def changes_nothing(self) -> bool:
        return self.scale == 0

    def hooks(self, model: HookedModel, batch: AudioBatch) -> list[tuple[str, HookFn]]:
        src, tgt = self._pairs(model, len(batch))
        pos = position_index(batch, [self.position])[:, 0]
        # Row r's source residual at its position, filled by the source layers' hooks (which
        # run before any target layer, since source < target for every row). Indices and the
        # saved rows move to the device of the activation they touch (layers may be split
        # across devices).
        saved: list[Tensor] = []
        hooks: list[tuple[str, HookFn]] = []
        for layer in sorted(set(src.tolist())):
            rows = torch.as_tensor(np.flatnonzero(src == layer))

            def save(act: Tensor, hook: Any, rows: Tensor = rows) -> None:
                if not saved:
                    saved.append(act.new_zeros(len(batch), act.shape[-1]))
                r = rows.to(act.device)
                saved[0][r.to(saved[0].device)] = act[r, pos.to(act.device)[r] - model.chunk_start].to(saved[0].device)

            hooks.append((model.resid_name(layer), save))
        for layer in sorted(set(tgt.tolist())):
            rows = torch.as_tensor(np.flatnonzero(tgt == layer))

            def add(act: Tensor, hook: Any, rows: Tensor = rows) -> Tensor:
                act = act.clone()
                r = rows.to(act.device)
                local = pos.to(act.device)[r] - model.chunk_start
                act[r, local] = act[r, local] + self.scale * saved[0][rows.to(saved[0].device)].to(act.device)
                return act

            hooks.append((model.resid_name(layer), add))
        return hooks


def _check_where(where: Any, what: str) -> None:
    """A position given as a name, a whole number, or a list of them (a tensor is checked by
    the batch it indexes)."""
    items = where if isinstance(where, (list, tuple)) else [where]
    for w in items:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (str, int, np.integer, Tensor)):
            raise ParameterError(f"{what} must be a position name (e.g. 'last') or a token index, got {where!r}")


def collect_hooks(
    interventions: Sequence[Intervention | tuple[str, HookFn]],
    model: HookedModel,
    batch: AudioBatch,
) -> list[tuple[str, HookFn]]:
    """All hooks of ``interventions`` in order, after checking that none overwrite each other."""
    if isinstance(interventions, Intervention) or (
            isinstance(interventions, tuple) and len(interventions) == 2 and isinstance(interventions[0], str)):
        raise ParameterError(f"interventions must be a list, got one intervention {interventions!r:.80}; wrap it: [...]")
    if isinstance(interventions, (str, bytes)) or not isinstance(interventions, Iterable):
        raise ParameterError(f"interventions must be a list of Interventions or (hook_name, fn) pairs, got {interventions!r:.80}")
    owners: dict[str, list[Intervention]] = {}
    hooks: list[tuple[str, HookFn]] = []
    for item in interventions:
        if isinstance(item, tuple):
            if len(item) != 2 or not callable(item[1]):
                raise ParameterError(f"a hook pair is (hook_name, fn(act, hook)), got {item!r:.80}")
            name, fn = item

            def pair(act: Tensor, hook: Any, batch: AudioBatch, fn: HookFn = fn) -> Tensor | None:
                return fn(act, hook)

            pair.__qualname__ = getattr(fn, "__qualname__", type(fn).__name__)
            item = HookIntervention(name, pair)
        if not isinstance(item, Intervention):
            raise ParameterError(f"not an intervention: {item!r} (use an Intervention or a (hook_name, fn) pair)")
        for name in item.writes(model):
            if name not in model.hook_dict:
                model.check_hook_names([name])  # names the hook, with close matches
                raise UnknownHookError(f"{type(item).__name__} writes unknown hook {name!r}")
            for other in owners.get(name, []):
                if not (item.commutes and other.commutes):
                    raise InterventionConflict(
                        f"{type(other).__name__} and {type(item).__name__} both write {name!r}; "
                        "their result would depend on order. Combine them into one intervention."
                    )
            owners.setdefault(name, []).append(item)
        hooks += item.hooks(model, batch)
    return hooks


def head_count(model: HookedModel, layer: int) -> int:
    """How many heads block ``layer`` (1..L) has: the width its output projection reads over the
    width of one head (what ``attn.hook_z`` splits into)."""
    from .backends.sites import head_dim_of

    attn = model.layers[layer - 1].get_submodule(model.architecture.attention)
    proj = attn.get_submodule(model.architecture.attn_output_proj)
    return proj.in_features // head_dim_of(attn, proj)


def _check_heads(model: HookedModel, heads: Mapping[int, Sequence[int]], what: str) -> dict[int, list[int]]:
    """``heads`` as ``{block: sorted heads}``, or :class:`UnknownHeadError` naming what is wrong."""
    if not heads:
        raise UnknownHeadError(f"{what}: no heads given; pass {{layer: [head, ...]}} with layers 1..{model.n_layers}")
    out: dict[int, list[int]] = {}
    for layer, chosen in heads.items():
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= model.n_layers:
            raise UnknownHeadError(f"{what}: layer {layer!r} is outside 1..{model.n_layers} (block numbers)")
        if model.components_missing:
            raise HookUnavailable(f"{what}: {model.architecture.name} has no per-head outputs "
                                  f"({model.components_missing})")
        n = head_count(model, int(layer))
        chosen = [chosen] if isinstance(chosen, (int, np.integer)) else list(chosen)
        bad = [h for h in chosen if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 0 <= h < n]
        if bad or not chosen:
            raise UnknownHeadError(f"{what}: heads {bad or chosen} of layer {layer} are outside 0..{n - 1}")
        out[int(layer)] = sorted({int(h) for h in chosen})
    return out


def _at_positions(batch: AudioBatch, positions: Any, model: HookedModel) -> Tensor | None:
    """``(batch, seq)`` bools of where a head edit applies (None: everywhere)."""
    if positions is None:
        return None
    index = position_index(batch, positions)
    where = torch.zeros(len(batch), batch.seq_len, dtype=torch.bool)
    rows = torch.arange(len(batch))[:, None].expand_as(index)
    where[rows[index >= 0], index[index >= 0]] = True
    return where


def _head_edit(model: HookedModel, where: Tensor | None, heads: list[int], edit: Callable[[Tensor, Tensor], Tensor]):
    """A hook on ``attn.hook_z`` (batch, seq, head, d_head) that replaces the chosen heads'
    outputs by ``edit(z_heads, local_positions)`` at ``where`` (everywhere when None)."""
    index = torch.as_tensor(heads)

    def fn(z: Tensor, hook) -> Tensor:
        start, length = model.chunk_start, z.shape[1]
        h = index.to(z.device)
        out = z.clone()
        new = edit(z[:, :, h], torch.arange(start, start + length, device=z.device))
        if where is None:
            out[:, :, h] = new
        else:
            m = where[:, start:start + length].to(z.device)[:, :, None, None]
            out[:, :, h] = torch.where(m, new, z[:, :, h])
        return out

    return fn


@dataclass
class HeadAblation(Intervention):
    """Remove attention heads' outputs (``attn.hook_z``) before the output projection.

    Args:
        heads: ``{layer: [head, ...]}`` with block numbers 1..L and heads 0..H-1.
        mode: ``"zero"`` (the heads write nothing) or ``"mean"`` (each head writes its mean output
            over ``reference`` at the same position).
        reference: the batch to average over (``mode="mean"``); it must have the batch's prompt
            and length, so that position p is the same token slot in both.
        positions: where to ablate: None (every position, the default) or positions/spans
            (``"last"``: only the answer token, so variants can share the prefix's cache).

    Example:
        >>> abl = HeadAblation({3: [0, 2]}, mode="mean", reference=ref_batch)  # doctest: +SKIP
        >>> LogitLens(task).run(model, batch, interventions=[abl]).accuracy()  # doctest: +SKIP
    """

    heads: Mapping[int, Sequence[int] | int]
    mode: str = "zero"
    reference: AudioBatch | None = None
    positions: Any = None

    def __post_init__(self) -> None:
        if self.mode not in ("zero", "mean"):
            raise ValueError(f"HeadAblation: mode must be 'zero' or 'mean', got {self.mode!r}")
        if self.mode == "mean" and self.reference is None:
            raise ValueError("HeadAblation: mode='mean' needs reference= (a batch to average over)")
        self._means: dict[int, dict[int, Tensor]] = {}

    def writes(self, model):
        return [f"blocks.{layer - 1}.attn.hook_z" for layer in _check_heads(model, self.heads, "HeadAblation")]

    def last_token_only(self, batch):
        return self.positions is not None and bool(
            (position_index(batch, self.positions) == batch.position("last")[:, None]).all())

    def for_heads(self, heads: Mapping[int, Sequence[int] | int]) -> HeadAblation:
        """The same ablation of other heads, sharing the reference means computed so far (so
        many single-head ablations cost one reference pass, see :meth:`reference_means`)."""
        other = replace(self, heads=heads)
        other._means = self._means
        return other

    def reference_means(self, model: HookedModel, batch: AudioBatch,
                        layers: Sequence[int] | None = None) -> dict[int, Tensor]:
        """Each position's mean ``z`` ``(seq, head, d_head)`` over the reference's real rows, per
        block (all blocks by default), computed in one pass and kept for later runs."""
        chosen = list(range(1, model.n_layers + 1)) if layers is None else [int(x) for x in layers]
        return self._reference_means(model, batch, chosen)

    def _reference_means(self, model: HookedModel, batch: AudioBatch, layers: list[int]) -> dict[int, Tensor]:
        """Per layer, each position's mean ``z`` over the reference's real rows ``(seq, head, d_head)``."""
        ref = self.reference
        assert ref is not None
        if ref.seq_len != batch.seq_len or ref.prompt != batch.prompt:
            raise ReferenceMismatch(
                f"HeadAblation: the reference batch ({ref.seq_len} tokens, prompt {ref.prompt.name!r}) has another "
                f"prompt shape than the batch ({batch.seq_len} tokens, prompt {batch.prompt.name!r}); prepare it "
                "with the same prompt and clips of the same token count"
            )
        real = ~ref.span("padding") if "padding" in ref.spans else torch.ones(len(ref), ref.seq_len, dtype=torch.bool)
        needed = ~batch.span("padding") if "padding" in batch.spans else torch.ones(len(batch), batch.seq_len, dtype=torch.bool)
        uncovered = needed.any(0) & ~real.any(0)
        if uncovered.any():
            raise ReferenceMismatch(
                f"HeadAblation: positions {uncovered.nonzero().flatten().tolist()[:5]} are real tokens of the batch "
                "but padding in every reference row, so they have no mean; use reference clips at least as long"
            )
        key = id(model)
        cached = self._means.setdefault(key, {})
        todo = [layer for layer in layers if layer not in cached]
        if todo:
            names = [f"blocks.{layer - 1}.attn.hook_z" for layer in todo]
            with torch.no_grad():
                _, cache = model.run_with_cache(ref, names_filter=names, return_type=None)
            weight = real.float() / real.float().sum(0).clamp(min=1)  # (rows, seq)
            for layer, name in zip(todo, names):
                z = cache[name].float()
                cached[layer] = torch.einsum("rs,rshd->shd", weight.to(z.device), z).to(cache[name].dtype)
        return cached

    def hooks(self, model, batch):
        heads = _check_heads(model, self.heads, "HeadAblation")
        where = _at_positions(batch, self.positions, model)
        means = self._reference_means(model, batch, list(heads)) if self.mode == "mean" else {}
        hooks = []
        for layer, chosen in heads.items():
            if self.mode == "zero":
                def edit(zh, pos):
                    return torch.zeros_like(zh)
            else:
                mean = means[layer][:, chosen]

                def edit(zh, pos, mean=mean):
                    return mean.to(zh.device, zh.dtype)[pos][None].expand_as(zh)

            hooks.append((f"blocks.{layer - 1}.attn.hook_z", _head_edit(model, where, chosen, edit)))
        return hooks


@dataclass
class HeadScale(Intervention):
    """Multiply attention heads' outputs (``attn.hook_z``) by ``factor``: steering toward (or
    away from) what those heads read. ``factor=1`` leaves the run bit-identical.

    Args:
        heads: ``{layer: [head, ...]}`` with block numbers 1..L and heads 0..H-1.
        factor: the multiplier λ.
        positions: None (every position, the default) or positions/spans such as ``"last"``.

    Example:
        >>> stq = HeadScale({3: [0, 2]}, factor=2.0)  # doctest: +SKIP
        >>> LogitLens(task).run(model, batch, interventions=[stq]).accuracy()  # doctest: +SKIP
    """

    heads: Mapping[int, Sequence[int] | int]
    factor: float = 2.0
    positions: Any = None

    def __post_init__(self) -> None:
        f = self.factor
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, (int, float, np.number)) or not np.isfinite(f):
            raise ValueError(f"HeadScale: factor must be a finite number, got {f!r}")

    def writes(self, model):
        return [f"blocks.{layer - 1}.attn.hook_z" for layer in _check_heads(model, self.heads, "HeadScale")]

    def last_token_only(self, batch):
        return self.positions is not None and bool(
            (position_index(batch, self.positions) == batch.position("last")[:, None]).all())

    def changes_nothing(self):
        return self.factor == 1

    def hooks(self, model, batch):
        heads = _check_heads(model, self.heads, "HeadScale")
        where = _at_positions(batch, self.positions, model)
        factor = float(self.factor)
        return [(f"blocks.{layer - 1}.attn.hook_z", _head_edit(model, where, chosen, lambda zh, pos: zh * factor))
                for layer, chosen in heads.items()]
