"""The hook-site algebra both backends share: attention masks as bools and back, residual
branch scaling, the split of the attention output into heads and a packed encoder's rows. The
``through_*`` functions show a site's activation to a hook point as the hook point's name says
it is, and return what the model should then receive: the activation itself when the hook
changed nothing, else the edit put back into the model's own form.

Example:
    >>> import torch
    >>> allowed = bool_attention_mask(None, torch.ones(1, 3), q_len=3, past=0, device="cpu")
    >>> allowed[0, 0].int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import AudiolensError, HookError, HookUnavailable


def checked_hook(name: str, fn):
    """``fn(act, hook)`` at hook point ``name``, failing loudly: an exception it raises, or a
    return value that is not a tensor of the activation's shape and dtype, becomes a
    :class:`HookError` naming the hook point and what it expected (instead of an index error
    deep inside the model)."""
    if getattr(fn, "_audiolens_checked", False):
        return fn
    what = getattr(fn, "__qualname__", type(fn).__name__)

    def hook(act: Tensor, hook=None):
        try:
            out = fn(act, hook=hook)
        except AudiolensError:
            raise
        except Exception as exc:
            raise HookError(f"the hook {what} on {name} raised {type(exc).__name__}: {exc}") from exc
        if out is None or out is act:
            return out
        expected = f"a tensor of shape {tuple(act.shape)} and dtype {act.dtype} (or None)"
        if not isinstance(out, Tensor):
            raise HookError(f"the hook {what} on {name} returned {type(out).__name__}; expected {expected}")
        if out.shape != act.shape or out.dtype != act.dtype:
            raise HookError(f"the hook {what} on {name} returned shape {tuple(out.shape)} and dtype "
                            f"{out.dtype}; expected {expected}")
        return out

    hook._audiolens_checked = True  # type: ignore[attr-defined]
    return hook


def scaled(x: Tensor, m: float) -> Tensor:
    return x if m == 1.0 else x * m


def unscaled(x: Tensor, m: float) -> Tensor:
    return x if m == 1.0 else x / m


def head_dim_of(attn: nn.Module, proj: nn.Module) -> int:
    """Width of one head: the attention's ``head_dim``, or its input width over its head count."""
    head_dim = getattr(attn, "head_dim", None) or getattr(getattr(attn, "config", None), "head_dim", None)
    if not head_dim:
        heads = next((getattr(attn, n) for n in ("num_heads", "heads", "num_attention_heads")
                      if isinstance(getattr(attn, n, None), int)), None)
        head_dim = proj.in_features // heads if heads else None
    if not head_dim:
        raise HookUnavailable(f"{type(attn).__name__} says neither its head_dim nor its head count, "
                              "so heads cannot be split")
    return int(head_dim)


def model_attention_mask(allowed: Tensor, original: Tensor | None, was_allowed: Tensor | None = None) -> Tensor:
    """``allowed`` (bools, True = may attend) in the form the layer was given: bools, or an
    additive float mask (eager attention) of the original's dtype. With ``was_allowed`` (the
    original as bools) only the entries that changed are rewritten, so every other entry of an
    additive mask, fully masked padding rows included, stays bit-identical."""
    if original is None or original.dtype == torch.bool:
        return allowed
    low = torch.finfo(original.dtype).min
    if was_allowed is None:
        return torch.zeros(allowed.shape, dtype=original.dtype, device=original.device).masked_fill(~allowed, low)
    was_allowed = was_allowed.expand(allowed.shape)
    out = original.expand(allowed.shape).clone()
    out = out.masked_fill(was_allowed & ~allowed, low)
    return out.masked_fill(~was_allowed & allowed, 0.0)


def bool_attention_mask(mask: Tensor | None, mask_2d: Tensor, q_len: int, past: int, device) -> Tensor:
    """The layer's attention mask as (batch, 1, q, k) bools, True = may attend."""
    if mask is not None:
        as_bool = mask.clone() if mask.dtype == torch.bool else mask == 0
        if as_bool.shape[-2] == 1 and q_len > 1:
            # A padding-only mask (batch, 1, 1, k): the layer applies causality itself.
            k_len = as_bool.shape[-1]
            q_pos = torch.arange(k_len - q_len, k_len, device=as_bool.device)[:, None]
            as_bool = as_bool & (torch.arange(k_len, device=as_bool.device)[None, :] <= q_pos)
        return as_bool
    # SDPA passes None for an unpadded causal batch: build the causal mask it implies.
    k_len = past + q_len
    q_pos = torch.arange(past, k_len, device=device)[:, None]
    causal = torch.arange(k_len, device=device)[None, :] <= q_pos
    keep = mask_2d.to(device=device, dtype=torch.bool)[:, None, None, -k_len:]
    return causal[None, None] & keep


def unpack_rows(flat: Tensor, lengths: Tensor, width: int) -> Tensor:
    """Frames of every clip concatenated on axis 0 ``(sum(lengths), d)`` shown per row as
    ``(batch, width, d)``, zeros past each row's length (a packed encoder's layout).

    Example:
        >>> unpack_rows(torch.arange(3.0)[:, None], torch.tensor([2, 1]), 2)[..., 0].tolist()
        [[0.0, 1.0], [2.0, 0.0]]
    """
    lengths = lengths.to(flat.device)
    if int(lengths.sum()) != flat.shape[0]:
        raise HookUnavailable(f"a packed encoder activation has {flat.shape[0]} frames, but the rows' "
                              f"frame counts sum to {int(lengths.sum())}: Architecture.audio_frames does not "
                              "describe this encoder")
    mask = torch.arange(width, device=flat.device)[None, :] < lengths[:, None]
    out = flat.new_zeros(len(lengths), width, *flat.shape[1:])
    out[mask] = flat
    return out


def pack_rows(rows: Tensor, lengths: Tensor) -> Tensor:
    """The inverse of :func:`unpack_rows`: each row's first ``lengths`` frames, concatenated."""
    mask = torch.arange(rows.shape[1], device=rows.device)[None, :] < lengths.to(rows.device)[:, None]
    return rows[mask]


#: a hook point, or any function of an activation that returns it (unchanged) or an edit of it
Site = Callable[[Tensor], Tensor]


def through_branch(fn: Site, out: Tensor, m: float, resid_pre: Tensor | None = None) -> Tensor:
    """A residual branch's output ``out`` (attention, MLP) as the stream sees it: what it adds,
    ``m · out``, or with ``resid_pre`` the stream after it, ``resid_pre + m · out``; an edit goes
    back as the branch's output.

    Example:
        >>> out = torch.ones(1, 2)
        >>> through_branch(lambda added: added * 3, out, m=2.0).tolist()
        [[3.0, 3.0]]
    """
    seen = scaled(out, m) if resid_pre is None else resid_pre + scaled(out, m)
    new = fn(seen)
    if new is seen:
        return out
    return unscaled(new if resid_pre is None else new - resid_pre, m)


def through_heads(fn: Site, x: Tensor, head_dim: int) -> Tensor:
    """The attention output projection's input ``x`` split into heads ``(batch, seq, head,
    d_head)``; an edit is merged back."""
    z = x.reshape(*x.shape[:-1], x.shape[-1] // head_dim, head_dim)
    new = fn(z)
    return x if new is z else new.reshape(x.shape)


def through_mask(fn: Site, mask: Tensor | None, mask_2d: Tensor, q_len: int, past: int, device) -> Tensor | None:
    """The layer's attention mask as ``(batch, 1, q, k)`` bools (:func:`bool_attention_mask`);
    an edit (in place too) goes back in the form the layer was given (:func:`model_attention_mask`).
    None when nothing changed: the layer keeps its own mask."""
    allowed = bool_attention_mask(mask, mask_2d, q_len, past, device)
    before = allowed.clone()  # a hook may edit its input in place
    new = fn(allowed)
    if new is allowed and torch.equal(new, before):
        return None
    return model_attention_mask(new, mask, before)


def through_packed(fn: Site, flat: Tensor, lengths: Tensor, width: int) -> Tensor:
    """A packed encoder's frames ``(sum(lengths), d)`` shown per row (:func:`unpack_rows`); an
    edit is packed back (:func:`pack_rows`)."""
    rows = unpack_rows(flat, lengths, width)
    new = fn(rows)
    return flat if new is rows else pack_rows(new, lengths)


def through_projector(fn: Site, output: Tensor, rows: int) -> Tensor:
    """The projector's output as ``(batch, tokens, d_model)``: a flat ``(rows · tokens, d)``
    output (one family joins every clip's tokens) is shown per row and flattened back."""
    flat = output.ndim == 2
    shown = output.reshape(rows, -1, output.shape[-1]) if flat else output
    new = fn(shown)
    if new is shown:
        return output
    return new.reshape(output.shape) if flat else new
