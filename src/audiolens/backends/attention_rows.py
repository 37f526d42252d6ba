"""Attention weights at a few query rows, read during an ordinary forward pass.

``attn.hook_pattern`` recomputes a layer's whole ``(head, query, key)`` pattern with eager
attention; an analysis that needs only the last token's row would pay for every row. Here the
attention module's own kernel still computes the layer's output, and beside it the softmax of
``q · kᵀ`` is formed for the asked query rows only, from the very query and key states the
kernel receives (after rotary embeddings and any query/key norms). Families whose attention
dispatches through transformers' ``AttentionInterface`` take this path; others fall back to the
exact eager recomputation behind ``hook_pattern``.

Example:
    >>> seen = {}
    >>> with attention_at_queries(model, rows, mask_2d, lambda i, w: seen.setdefault(i, w)):  # doctest: +SKIP
    ...     model.run_backbone(batch.inputs)
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from ..errors import HookUnavailable
from .model import HookedModel
from .sites import bool_attention_mask

KERNEL = "audiolens_rows"

# attention module -> (the kernel it was configured with, its layer index, the reader).
_ACTIVE: weakref.WeakKeyDictionary[nn.Module, tuple[str, int, Callable]] = weakref.WeakKeyDictionary()
_REGISTERED = False

OnWeights = Callable[[int, Float[Tensor, "batch head query key"]], None]


def dispatches_kernel(attn: nn.Module) -> bool:
    """Whether ``attn`` picks its kernel from ``config._attn_implementation`` through
    transformers' attention registry (so a reading kernel can stand in for it)."""
    config = getattr(attn, "config", None)
    source = sys.modules.get(type(attn).__module__)
    return hasattr(config, "_attn_implementation") and hasattr(source, "ALL_ATTENTION_FUNCTIONS")


def _register() -> None:
    global _REGISTERED
    if not _REGISTERED:
        from transformers import AttentionInterface

        AttentionInterface.register(KERNEL, _reading_kernel)
        _REGISTERED = True


def _original_kernel(module: nn.Module, name: str) -> Callable:
    if name == "eager" or name is None:
        fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        if fn is None:
            raise HookUnavailable(f"{type(module).__name__}: no eager attention function found beside it")
        return fn
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS[name]


def _reading_kernel(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                    *args: Any, **kwargs: Any):
    original, layer, reader = _ACTIVE[module]
    out = _original_kernel(module, original)(module, query, key, value, attention_mask, *args, **kwargs)
    reader(layer, module, query, key, attention_mask, kwargs)
    return out


def row_weights(query: Tensor, key: Tensor, mask: Tensor, rows: Tensor, scaling: float,
                softcap: float | None = None) -> Float[Tensor, "batch head rows key"]:
    """Eager attention weights at query ``rows`` (``(batch, k)`` local indices): the softmax of
    ``scaling · q kᵀ`` (soft-capped if the family caps) over the allowed keys, in float32 as
    eager attention computes it. ``mask`` is ``(batch, 1|head, query, key)`` bools."""
    b, heads = query.shape[:2]
    groups = heads // key.shape[1]
    keys = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    idx = rows.to(query.device)
    q = query[torch.arange(b, device=query.device)[:, None, None], torch.arange(heads, device=query.device)[None, :, None],
              idx[:, None, :]]  # (b, h, k_rows, d)
    logits = (q @ keys.transpose(-1, -2)) * scaling
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    allowed = mask.to(query.device).expand(b, -1, -1, -1)
    allowed = allowed[torch.arange(b, device=query.device)[:, None], :, idx].transpose(1, 2)  # (b, 1|h, rows, k)
    logits = logits.masked_fill(~allowed[..., : keys.shape[2]], torch.finfo(logits.dtype).min)
    return torch.softmax(logits, dim=-1, dtype=torch.float32)


@contextlib.contextmanager
def attention_at_queries(
    model: HookedModel,
    rows: Int[Tensor, "batch k"],
    attention_mask_2d: Tensor,
    on_weights: OnWeights,
    layers: list[int] | None = None,
) -> Iterator[None]:
    """During the forward inside, call ``on_weights(block, weights)`` for each decoder block
    (0-based) with its attention weights ``(batch, head, k, key)`` at the query positions
    ``rows`` (absolute; -1 = none, read as row 0 and left to the caller to ignore).

    Only a forward over the whole sequence is read; cached steps after it (``run_many``'s
    last-token variants) run unread.
    """
    handles = []
    fallback = []
    chosen = range(model.n_layers) if layers is None else layers
    arch = model.architecture
    rows = rows.clamp(min=0)
    try:
        for i in chosen:
            attn = model.layers[i].get_submodule(arch.attention)
            if dispatches_kernel(attn):
                _register()

                def reader(layer, module, query, key, mask, kwargs):
                    if model.chunk_start or int(rows.max()) >= query.shape[2]:
                        return  # a cached step, or a prefix that stops before the queries: not read
                    allowed = bool_attention_mask(mask, attention_mask_2d, query.shape[2], 0, query.device)
                    window = kwargs.get("sliding_window")
                    if window:
                        k_len = key.shape[2]
                        q_pos = torch.arange(k_len - query.shape[2], k_len, device=query.device)[:, None]
                        allowed = allowed & (q_pos - torch.arange(k_len, device=query.device)[None] < window)
                    if kwargs.get("s_aux") is not None:
                        raise HookUnavailable(f"{type(module).__name__}: attention sinks are not read by rows")
                    scaling = kwargs.get("scaling") or query.shape[-1] ** -0.5
                    on_weights(layer, row_weights(query, key, allowed, rows, scaling, kwargs.get("softcap")))

                def pre(module, args, kwargs, i=i, reader=reader):
                    _ACTIVE[module] = (module.config._attn_implementation, i, reader)
                    module.config._attn_implementation = KERNEL

                def post(module, args, output):
                    original = _ACTIVE.pop(module)[0]
                    module.config._attn_implementation = original

                handles.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
                handles.append(attn.register_forward_hook(post))
            else:
                block = model.blocks[i]
                if getattr(block, "attn", None) is None:
                    raise HookUnavailable(f"{arch.name}: attention weights cannot be read "
                                          f"({model.components_missing})")

                def from_pattern(pattern, hook, i=i):
                    if model.chunk_start or int(rows.max()) >= pattern.shape[2]:
                        return
                    index = rows.to(pattern.device)
                    b = torch.arange(pattern.shape[0], device=pattern.device)[:, None]
                    on_weights(i, pattern.transpose(1, 2)[b, index].transpose(1, 2).float())

                fallback.append((f"blocks.{i}.attn.hook_pattern", from_pattern))
        with model.hooks(fwd_hooks=fallback):  # type: ignore[attr-defined]
            yield
    finally:
        for h in handles:
            h.remove()
        for i in chosen:
            attn = model.layers[i].get_submodule(arch.attention)
            if attn in _ACTIVE:  # an exception inside the forward: put the kernel back
                attn.config._attn_implementation = _ACTIVE.pop(attn)[0]

