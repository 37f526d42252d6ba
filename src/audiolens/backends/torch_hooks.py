"""The PyTorch-hook backend: small forward hooks on the HF modules feed the wrapper's
HookPoints during one forward pass, and are always removed afterwards.

Decoder layer input → ``hook_resid_pre``; attention keyword ``attention_mask`` →
``hook_attn_mask``; attention output → ``hook_attn_out`` / ``hook_resid_mid``; MLP output →
``hook_mlp_out``; output projection input → ``attn.hook_z``; layer output →
``hook_resid_post``; final norm output → ``ln_final.hook_normalized``. Component hooks are
attached only when something listens to them.

On the audio path (families that describe it): first encoder layer input →
``encoder.hook_embed``; encoder layer outputs → ``encoder.blocks.{l}.hook_resid_post``; audio
tower output (``last_hidden_state``) → ``encoder.hook_out``; projector output →
``projector.hook_out`` (a flat ``(tokens, d)`` output is shown per row).

Example:
    >>> with routed(model, batch.inputs["attention_mask"]):  # doctest: +SKIP
    ...     out = model.backbone(**batch.inputs)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, TypeGuard, cast

import torch
from torch import Tensor
from transformer_lens.hook_points import HookPoint

from ..architectures.base import AudioPath
from ..errors import HookUnavailable
from .model import BlockHooks, EncoderBlockHooks, HookedModel, NormHooks
from .sites import (
    bool_attention_mask,
    head_dim_of,
    model_attention_mask,
    through_branch,
    through_heads,
    through_mask,
    through_packed,
    through_projector,
)


@contextlib.contextmanager
def routed(model: HookedModel, attention_mask: Tensor, inputs: dict[str, Tensor] | None = None) -> Iterator[None]:
    """Attach the PyTorch hooks that feed the HookPoints; always removed afterwards. ``inputs``
    (the forward's) give a packed encoder's per-row frame counts."""
    handles = []
    layers = model.layers
    arch, m = model.architecture, model.cfg.residual_multiplier
    try:
        for i, layer in enumerate(layers):
            block = cast(BlockHooks, model.blocks[i])  # the wrapper's block of HookPoints
            attn = layer.get_submodule(arch.attention)
            handles.append(layer.register_forward_pre_hook(_pre_hook(block), with_kwargs=True))
            handles.append(layer.register_forward_hook(_post_hook(block)))
            handles.append(attn.register_forward_pre_hook(
                _mask_hook(block, model, attention_mask), with_kwargs=True))
            handles.append(attn.register_forward_hook(_attn_out_hook(block, m)))
            if model.components_missing:
                continue
            # Component hooks are attached only when asked: they cost time on every layer.
            if active(block.hook_mlp_out):
                handles.append(layer.get_submodule(arch.mlp).register_forward_hook(_mlp_hook(block, m)))
            if active(block.attn.hook_z):
                proj = attn.get_submodule(arch.attn_output_proj)
                handles.append(proj.register_forward_pre_hook(_z_hook(block, head_dim_of(attn, proj))))
            if active(block.attn.hook_pattern):
                handles.append(attn.register_forward_hook(
                    _pattern_hook(block, model, attention_mask), with_kwargs=True))
        handles.append(model.final_norm.register_forward_hook(_norm_hook(model.ln_final)))
        if model.audio_path is not None:
            packed = model.architecture.packed_lengths(inputs) if inputs is not None else None
            handles += _route_audio(model, model.audio_path, attention_mask.shape[0], packed)
        yield
    finally:
        for h in handles:
            h.remove()
        for module in model.blocks:
            module.__dict__.pop("_resid_pre", None)


def _route_audio(model: HookedModel, path: AudioPath, rows: int, packed: dict[str, tuple[Tensor, int]] | None) -> list:
    """Hooks on the audio tower, its layers and the projector, for the hook points listened to.
    A packed tower's frames are shown per row (``packed``: each stage's counts and width)."""
    enc, handles = model.encoder, []
    layers = path.layers

    def per_row(hp: HookPoint, stage: str) -> Any:
        if packed is None:
            return hp
        lengths, width = packed[stage]
        return partial(through_packed, hp, lengths=lengths, width=width)

    if len(layers) and active(enc.hook_embed):
        handles.append(layers[0].register_forward_pre_hook(_input_hook(per_row(enc.hook_embed, "encoder")),
                                                           with_kwargs=True))
    for layer, block in zip(layers, cast(Iterable[EncoderBlockHooks], enc.blocks)):
        if active(block.hook_resid_post):
            handles.append(layer.register_forward_hook(_output_hook(per_row(block.hook_resid_post, "encoder"))))
    if active(enc.hook_out):
        handles.append(path.output.register_forward_hook(_output_hook(per_row(enc.hook_out, "encoder_out"))))
    if active(model.projector.hook_out):
        hook = (_projector_hook(model.projector.hook_out, rows) if packed is None
                else _output_hook(per_row(model.projector.hook_out, "projector")))
        handles.append(path.projector.register_forward_hook(hook))
    return handles


def first_tensor(output):
    """The hidden state in a module's output: the tensor, the first of a tuple, or
    ``last_hidden_state`` of a model output."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    return output[0]


def with_first(output, new):
    """``output`` with its hidden state (see :func:`first_tensor`) replaced by ``new``."""
    if isinstance(output, torch.Tensor):
        return new
    if hasattr(output, "last_hidden_state"):
        output.last_hidden_state = new
        return output
    return (new, *output[1:])


def _input_hook(hp):
    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        new = hp(hidden)
        return None if new is hidden else _with_hidden(args, kwargs, new)

    return hook


def _output_hook(hp):
    def hook(module, args, output):
        hidden = first_tensor(output)
        new = hp(hidden)
        return None if new is hidden else with_first(output, new)

    return hook


def _projector_hook(hp: HookPoint, rows: int):
    """The projector's output per row (:func:`~audiolens.backends.sites.through_projector`)."""

    def hook(module, args, output):
        new = through_projector(hp, output, rows)
        return None if new is output else new

    return hook


def active(hook: HookPoint | None) -> TypeGuard[HookPoint]:
    """Whether anything is attached to ``hook`` (an absent hook point is inactive)."""
    return hook is not None and bool(hook.fwd_hooks)



def _pre_hook(block: BlockHooks):
    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        new = block.hook_resid_pre(hidden) if active(block.hook_resid_pre) else hidden
        if active(getattr(block, "hook_resid_mid", None)):
            block.__dict__["_resid_pre"] = new
        return None if new is hidden else _with_hidden(args, kwargs, new)

    return hook


def _with_hidden(args: tuple[Any, ...], kwargs: dict[str, Any], new: Tensor) -> tuple[Any, ...]:
    """A forward pre-hook's return value that passes ``new`` as the module's hidden states,
    positionally or by keyword, as the module was called."""
    if args:
        return (new, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": new}


def _post_hook(block: BlockHooks):
    def hook(module, args, output):
        if not active(block.hook_resid_post):
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        new = block.hook_resid_post(hidden)
        if new is hidden:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def _attn_out_hook(block: BlockHooks, m: float):
    """``hook_attn_out`` (what attention adds to the stream, m · output) and ``hook_resid_mid``
    (resid_pre plus that); edits go back to the layer as the output it then scales by m."""

    def hook(module, args, output):
        attn_hook = getattr(block, "hook_attn_out", None)
        mid_hook = getattr(block, "hook_resid_mid", None)
        if not (active(attn_hook) or active(mid_hook)):
            return None
        out = output[0]
        new = through_branch(attn_hook, out, m) if active(attn_hook) else out
        if active(mid_hook):  # the same sum the decoder layer forms next
            new = through_branch(mid_hook, new, m, resid_pre=block.__dict__["_resid_pre"])
        return None if new is out else (new, *output[1:])

    return hook


def _mlp_hook(block: BlockHooks, m: float):
    def hook(module, args, output):
        out = output[0] if isinstance(output, tuple) else output
        new = through_branch(block.hook_mlp_out, out, m)
        if new is out:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def _z_hook(block: BlockHooks, head_dim: int):
    """Per-head outputs ``(batch, seq, head, d_head)``: the output projection's input, split."""

    def hook(module, args):
        new = through_heads(block.attn.hook_z, args[0], head_dim)
        return None if new is args[0] else (new, *args[1:])

    return hook


def _pattern_hook(block: BlockHooks, model: HookedModel, attention_mask_2d: Tensor):
    """``attn.hook_pattern`` ``(batch, head, query, key)``: the layer's own attention weights,
    recomputed with eager attention from the same inputs (the run itself keeps its kernel)."""

    def hook(module, args, kwargs, output):
        if model.chunk_start:
            raise HookUnavailable("attention patterns are read in a full forward, not a cached step")
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        allowed = bool_attention_mask(kwargs.get("attention_mask"), attention_mask_2d, hidden.shape[1], 0, hidden.device)
        additive = model_attention_mask(allowed, torch.zeros((), dtype=hidden.dtype, device=hidden.device))
        config: Any = getattr(module, "config", None)
        if not hasattr(config, "_attn_implementation"):
            raise HookUnavailable(
                f"attn.hook_pattern: {type(module).__name__} does not choose its attention kernel from "
                "config._attn_implementation, so its weights cannot be recomputed"
            )
        kernel = config._attn_implementation
        config._attn_implementation = "eager"
        try:
            # Recomputed without the cache: under either name, it would store this step's keys twice.
            no_cache = {k: None for k in ("cache", "past_key_values") if k in kwargs}
            _, weights = module.forward(*args, **{**kwargs, "attention_mask": additive, **no_cache})
        finally:
            config._attn_implementation = kernel
        version = weights._version  # bumped by any in-place edit
        new = block.attn.hook_pattern(weights)
        if new is not weights or weights._version != version:
            raise HookUnavailable(
                "attn.hook_pattern is read-only; to change attention, edit attn.hook_z or mask "
                "keys with AudioMask / hook_attn_mask"
            )

    return hook


def _mask_hook(block: BlockHooks, model: HookedModel, attention_mask_2d: Tensor):
    def hook(module, args, kwargs):
        if not active(block.hook_attn_mask):
            return None
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        new = through_mask(block.hook_attn_mask, kwargs.get("attention_mask"), attention_mask_2d, hidden.shape[1],
                           model.chunk_start, hidden.device)
        return None if new is None else (args, {**kwargs, "attention_mask": new})

    return hook


def _norm_hook(ln_final: NormHooks):
    def hook(module, args, output):
        if not active(ln_final.hook_normalized):
            return None
        new = ln_final.hook_normalized(output)
        return None if new is output else new

    return hook
