"""Lenses: read a layer's residual through the model's own head (Eq. 1), in one forward pass.

``LogitLens(labels).run(model, batch)`` caches the residual at ℓ = 0..L only at the asked
positions, applies the final norm once to those raw residuals, and projects them onto the
label tokens' rows of the unembedding. The full-vocabulary head is never applied at every
position, so a lens run costs less than the model's own forward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
from jaxtyping import Float
from torch import Tensor

from ..backends import execute
from ..batch import AudioBatch, gather_positions, position_index, shared_prefix
from ..checks import whole_number
from ..errors import NonFiniteWarning, ParameterError, warn_user
from ..interventions import HookFn, Intervention, collect_hooks
from ..tasks import Task
from .base import Asked, LabelLens
from .result import LensResult

if TYPE_CHECKING:
    from ..hooked import HookedAudioLM

K = TypeVar("K")  # the key of a variant (a name, or e.g. (λ, seed) in an enrichment sweep)


class Lens(ABC):
    """Maps a residual at some layer to next-token logits.

    Subclasses implement :meth:`transform_hidden` (residual -> what the head reads); the head is
    the model's own unembedding.
    """

    @abstractmethod
    def transform_hidden(
        self, model: HookedAudioLM, hidden: Float[Tensor, "... d_model"], layer: int
    ) -> Float[Tensor, "... d_model"]: ...

    def forward(
        self, model: HookedAudioLM, hidden: Float[Tensor, "... d_model"], layer: int,
        token_ids: Sequence[int] | None = None,
    ) -> Float[Tensor, "... vocab"]:
        """Logits at ``token_ids`` rows of the unembedding (all rows when None)."""
        return model.unembed(self.transform_hidden(model, hidden, layer), token_ids)


@dataclass
class LogitLens(Lens, LabelLens[LensResult]):
    """The logit lens (Eq. 1): ``W_U · norm(h)`` over the task's labels, every layer in one
    forward pass.

    Args:
        labels, label_tokens, positions: see :class:`~audiolens.lenses.base.LabelLens`
            (``labels`` is required here; positions default to the last token and the attribute).
        full_vocab: also return each label's probability under the full-vocabulary softmax.
        variants_per_step: how many last-token variants ``run_many`` / ``run_formats`` batch
            into one step (each copies the prefix's key/value cache once).

    Example:
        >>> lens = LogitLens(al.sakura_task("gender"))          # doctest: +SKIP
        >>> res = lens.run(model, batch)                         # doctest: +SKIP
        >>> res.info_scores(), res.critical_layer()              # doctest: +SKIP
    """

    labels: Task | Sequence[str] | None
    positions: tuple[str | int, ...] = ("last", "attribute")
    full_vocab: bool = False
    variants_per_step: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        self.variants_per_step = whole_number(self.variants_per_step, "variants_per_step", low=1)
        if not isinstance(self.full_vocab, bool):
            raise ParameterError(f"full_vocab must be True or False, got {self.full_vocab!r}")

    def transform_hidden(
        self, model: HookedAudioLM, hidden: Float[Tensor, "... d_model"], layer: int
    ) -> Float[Tensor, "... d_model"]:
        return cast(Tensor, model.final_norm(hidden))

    def _read(self, model: HookedAudioLM, batch: AudioBatch, asked: Asked, edits: list[tuple[str, HookFn]],
              *, backend: str, remote: bool) -> LensResult:
        """The residual at every layer 0..L and asked position, read in one forward pass."""
        names = [model.resid_name(layer) for layer in range(model.n_layers + 1)]
        resid: dict[str, Tensor] = {}

        def keep(act: Tensor, hook: Any) -> None:
            resid[hook.name] = gather_positions(act, asked.index).to(model.device)

        execute(model, batch.inputs, edits + [(n, keep) for n in names], backend=backend, remote=remote)
        return self._result(model, batch, torch.stack([resid[n] for n in names]), asked)

    @torch.no_grad()
    def run_many(
        self,
        model: HookedAudioLM,
        batch: AudioBatch,
        variants: Mapping[K, Sequence[Intervention]],
        *,
        backend: str = "hooks",
        remote: bool = False,
    ) -> dict[K, LensResult]:
        """Several intervention sets on one batch, e.g. ``{"none": [], "mask": [AudioMask()]}``.

        When every intervention acts only at the last token (masks and enrichments there do),
        everything before it is the same in all variants: the prefix runs once, its key/value
        cache is kept, and each variant costs one single-token step. Otherwise each variant is
        an ordinary :meth:`~audiolens.lenses.base.LabelLens.run`.

        Example:
            >>> out = lens.run_many(model, batch, {"none": [], "masked": [AudioMask()]})  # doctest: +SKIP
            >>> out["masked"].info_scores()  # doctest: +SKIP
        """
        _check_variants(variants)
        if not self._shareable(batch, variants, len(variants) > 1):
            return {name: self.run(model, batch, ivs, backend=backend, remote=remote)
                    for name, ivs in variants.items()}
        return self._run_tail(model, batch, variants, backend=backend, remote=remote)

    @torch.no_grad()
    def run_formats(
        self,
        model: HookedAudioLM,
        batches: Mapping[str, AudioBatch],
        variants: Mapping[Any, Sequence[Intervention]] | None = None,
        *,
        extra: Mapping[str, Mapping[Any, Sequence[Intervention]]] | None = None,
        backend: str = "hooks",
        remote: bool = False,
    ) -> dict[str, dict[Any, LensResult]]:
        """The same clips under several prompts (e.g. the formats P1–P3), each with ``variants``.

        The prompts differ only after the audio, so the tokens they share (system turn, audio,
        and whatever follows it identically) run once and their key/value cache is reused by
        every prompt; with last-token variants each prompt then costs its own few tokens plus
        one step per variant. ``extra`` adds variants for some prompts only (e.g. an
        enrichment sweep under P3). Results equal separate :meth:`run_many` calls.

        Example:
            >>> batches = {f: model.prepare(clips, 16000, task.prompt(f), labels) for f in ("P1", "P2", "P3")}  # doctest: +SKIP
            >>> out = lens.run_formats(model, batches, {"none": [], "mask": [AudioMask()]})  # doctest: +SKIP
            >>> out["P3"]["mask"].info_scores()  # doctest: +SKIP
        """
        common = {"none": []} if variants is None else variants
        per_prompt = {name: {**common, **(extra or {}).get(name, {})} for name in batches}
        shared = shared_prefix(list(batches.values()))
        if shared == 0 or not all(self._shareable(b, per_prompt[n], True, start=shared) for n, b in batches.items()):
            return {name: self.run_many(model, b, per_prompt[name], backend=backend, remote=remote)
                    for name, b in batches.items()}
        first = next(iter(batches.values()))
        cache = model.returned_cache(execute(model, first.chunk(0, shared), backend=backend, remote=remote,
                                             use_cache=True))
        out = {}
        for name, batch in batches.items():
            try:
                out[name] = self._run_tail(model, batch, per_prompt[name], cache=cache, start=shared,
                                           backend=backend, remote=remote)
            finally:
                cache = model.crop_cache(cache, shared)
        return out

    def _shareable(self, batch: AudioBatch, variants: Mapping[Any, Sequence[Intervention]],
                   worth_it: bool, start: int = 0) -> bool:
        """Can ``variants`` run as one pass over ``start:last`` plus a step each? (All act only
        at the last token, and every read position lies at or after ``start``.)"""
        last = batch.position("last")
        return (
            worth_it
            and bool((last == batch.seq_len - 1).all())
            and bool((position_index(batch, list(self.positions)) >= start).all())
            and all(isinstance(iv, Intervention) and iv.last_token_only(batch)
                    for ivs in variants.values() for iv in ivs)
        )

    def _run_tail(
        self, model: HookedAudioLM, batch: AudioBatch, variants: Mapping[K, Sequence[Intervention]],
        cache: Any = None, start: int = 0, backend: str = "hooks", remote: bool = False,
    ) -> dict[K, LensResult]:
        """Tokens ``start:`` of ``batch`` on top of ``cache`` (holding the tokens before
        ``start``): everything before the last token once, then the last token per variant."""
        asked = self._ask(model, batch)
        index = asked.index
        end = batch.seq_len - 1
        at_last = (index == end)[..., None].to(model.device)  # (batch, k, 1)
        names = [model.resid_name(layer) for layer in range(model.n_layers + 1)]
        # Variants that change nothing (none at all, Enrich with λ = 0) equal the plain run,
        # which the pass over the tokens gives for free by going on through the last token.
        plain = [name for name, ivs in variants.items() if all(iv.changes_nothing() for iv in ivs)]
        for name in plain:
            collect_hooks(variants[name], model, batch)  # still checked, as a step would
        stop = end + 1 if plain else end
        before: dict[str, Tensor] = {}
        if stop > start:
            def keep_before(act: Tensor, hook: Any) -> None:
                # Without a plain variant, positions at the last token are filled from each
                # variant's step below.
                before[hook.name] = gather_positions(
                    act, index.clamp(min=start, max=stop - 1) - model.chunk_start).to(model.device)

            cache = model.returned_cache(execute(
                model, batch.chunk(start, stop), [(n, keep_before) for n in names], backend=backend,
                remote=remote, past_key_values=cache, use_cache=True))

        results: dict[K, LensResult] = {}
        if plain:
            res = self._result(model, batch, torch.stack([before[n] for n in names]), asked)
            results = {name: replace(res) for name in plain}
            cache = model.crop_cache(cache, end)  # the steps below start before the last token
        ops = model.architecture.kv_cache
        group = self.variants_per_step if ops.repeat_rows and ops.keep_rows else 1
        items = [(name, ivs) for name, ivs in variants.items() if name not in results]
        for g in range(0, len(items), group):
            chunk = items[g:g + group]
            steps, cache = self._step(model, batch, chunk, cache, end, names, backend, remote)
            for (name, _), step in zip(chunk, steps):
                if before:
                    stacked = torch.stack([torch.where(at_last, step[n], before[n]) for n in names])
                else:
                    stacked = torch.stack([step[n].expand(-1, index.shape[1], -1) for n in names])
                results[name] = self._result(model, batch, stacked, asked)
        return {name: results[name] for name in variants}

    def _step(
        self, model: HookedAudioLM, batch: AudioBatch, chunk: Sequence[tuple[Any, Sequence[Intervention]]],
        cache: Any, end: int, names: list[str], backend: str, remote: bool,
    ) -> tuple[list[dict[str, Tensor]], Any]:
        """The last token under each variant of ``chunk``, as one step over ``len(chunk)`` copies
        of the batch (row r of variant v is row r·len(chunk) + v); the cache is back to ``end``
        positions and ``len(batch)`` rows afterwards."""
        n, rows = len(chunk), len(batch)
        ops = model.architecture.kv_cache
        inputs = {k: v.repeat_interleave(n, dim=0) for k, v in batch.chunk(end, end + 1).items()}
        kept: dict[str, Tensor] = {}

        def keep_step(act: Tensor, hook: Any) -> None:
            kept[hook.name] = act[:, -1:].to(model.device)

        hooks = [(hook_name, _on_rows(fn, v, n)) for v, (_, ivs) in enumerate(chunk)
                 for hook_name, fn in collect_hooks(ivs, model, batch)]
        hooks += [(name, keep_step) for name in names]
        if n > 1:
            assert ops.repeat_rows is not None  # n > 1 only when the family has both row ops
            cache = ops.repeat_rows(cache, n)
        try:
            execute(model, inputs, hooks, backend=backend, remote=remote, past_key_values=cache, use_cache=True)
        finally:
            if n > 1 and ops.keep_rows is not None:
                cache = ops.keep_rows(cache, torch.arange(0, rows * n, n))
            cache = model.crop_cache(cache, end)  # back to everything before the last token
        return [{name: kept[name][v::n] for name in names} for v in range(n)], cache

    def _result(
        self, model: HookedAudioLM, batch: AudioBatch, stacked: Float[Tensor, "layers batch pos d_model"], asked: Asked,
    ) -> LensResult:
        # Positions a row does not have (a shorter span) are NaN on purpose; anything else
        # non-finite is reported once, at the first site where it appears.
        token_ids = asked.token_ids
        keep = (asked.index >= 0).to(stacked.device)
        transformed = [self.transform_hidden(model, stacked[layer], layer) for layer in range(len(stacked))]
        label_logits = torch.stack([model.unembed(h, token_ids) for h in transformed])
        _report_nonfinite(model, self, stacked, transformed, label_logits, keep)
        label_probs = None
        if self.full_vocab:
            label_probs = torch.stack([
                torch.softmax(self.forward(model, stacked[layer], layer).float(), -1)[..., token_ids]
                for layer in range(len(stacked))
            ])
        return self._lens_result(batch, asked, label_logits, label_probs)


def _check_variants(variants: Any) -> None:
    if not isinstance(variants, Mapping):
        raise ParameterError(f"variants must map names to lists of interventions, e.g. "
                             f"{{'none': [], 'mask': [AudioMask()]}}; got {variants!r:.80}")


def _first_bad(values: Tensor, keep: Tensor) -> bool:
    """Whether ``values`` (batch, pos, ...) has a NaN or inf at a kept (batch, pos) entry."""
    bad = ~torch.isfinite(values.reshape(*values.shape[:2], -1)).all(-1)
    return bool((bad & keep).any())


def _report_nonfinite(model: HookedAudioLM, lens: Lens, stacked: Tensor, transformed: list[Tensor], label_logits: Tensor,
                      keep: Tensor) -> None:
    """One :class:`NonFiniteWarning` per run, naming the first layer and site (residual, the
    lens's transform, label logits) where NaN or inf appears."""
    for layer in range(len(stacked)):
        if _first_bad(stacked[layer], keep):
            site = f"the residual {model.resid_name(layer)} (layer {layer})"
        elif _first_bad(transformed[layer], keep):
            site = f"{type(lens).__name__}'s transform of layer {layer} (translator / final norm)"
        elif _first_bad(label_logits[layer], keep.to(label_logits.device)):
            site = f"the label logits at layer {layer}"
        else:
            continue
        warn_user(f"NaN or inf in {site}; predictions there are meaningless (NaN logits count as misses)",
                  NonFiniteWarning)
        return


def _on_rows(fn: HookFn, v: int, n: int) -> HookFn:
    """``fn`` applied to the rows of variant ``v`` (rows v, v + n, ...) of an activation that
    holds ``n`` interleaved copies of a batch; other rows are left alone."""

    def on_rows(act: Tensor, hook: Any) -> Tensor | None:
        if n == 1:
            return fn(act, hook)
        part = act[v::n]
        new = fn(part, hook)
        if new is None or new is part:
            return None if new is None else act
        out = act.clone()
        out[v::n] = new
        return out

    return on_rows
