"""The nnsight backend: the wrapper's named sites read and written inside an nnsight trace.

Each site maps onto the module whose input or output the hook backend routes through its
HookPoint (decoder layer input → ``resid_pre``, attention keyword ``attention_mask`` →
``hook_attn_mask``, attention output → ``hook_attn_out`` / ``hook_resid_mid``, MLP output →
``hook_mlp_out``, output projection input → ``attn.hook_z``, layer output → ``resid_post``,
final norm output → ``ln_final.hook_normalized``; on the audio path, first encoder layer input →
``encoder.hook_embed``, encoder layer output → ``encoder.blocks.{l}.hook_resid_post``, audio tower
output → ``encoder.hook_out``, projector output → ``projector.hook_out``), visited in execution
order as nnsight requires (the audio path runs before the decoder). The functions run on real tensors, so any intervention runs unchanged.
"""

from __future__ import annotations

import os
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any

from torch import Tensor, nn

from ..errors import HookUnavailable as HookUnavailable
from ..errors import RemoteUnavailable as RemoteUnavailable
from .model import HookedModel
from .sites import (
    checked_hook,
    head_dim_of,
    through_branch,
    through_heads,
    through_mask,
    through_packed,
    through_projector,
)
from .torch_hooks import first_tensor, with_first


def _envoy(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def _relative(path: str, backbone: str) -> str:
    if path.startswith(backbone + "."):
        return path[len(backbone) + 1:]
    raise HookUnavailable(f"{path!r} is not inside the backbone {backbone!r}: nnsight cannot trace it")


def _module(model: HookedModel, layer: int, arch, proj: bool = False):
    """The real attention module (or its output projection) of block ``layer``."""
    attn = model.layers[layer].get_submodule(arch.attention)
    return attn.get_submodule(arch.attn_output_proj) if proj else attn


# One nnsight wrapper per backbone, built on first use and dropped with the model.
_TRACED: weakref.WeakKeyDictionary[nn.Module, Any] = weakref.WeakKeyDictionary()


def _traced(model: HookedModel) -> Any:
    from nnsight import NNsight

    backbone = model.backbone
    if backbone not in _TRACED:
        _TRACED[backbone] = NNsight(backbone)
    return _TRACED[backbone]


def _check_remote() -> None:
    from nnsight import CONFIG

    key = getattr(CONFIG.API, "APIKEY", None) or os.environ.get("NDIF_API_KEY")
    if not key:
        raise RemoteUnavailable(
            "remote execution runs on NDIF and needs an API key: set one with "
            "nnsight.CONFIG.set_default_api_key(...) or the NDIF_API_KEY variable, and network "
            f"access to {CONFIG.API.HOST}; NDIF also only serves the models it hosts"
        )


def run_traced(model: HookedModel, inputs: dict[str, Tensor], hooks: Sequence[tuple[str, Callable]], *, remote: bool,
               past_key_values: Any, use_cache: bool) -> Any:
    """The backbone's output, with ``hooks`` applied at their sites inside an nnsight trace."""
    if remote:
        _check_remote()
    by_name: dict[str, list[Callable]] = defaultdict(list)
    for name, fn in hooks:
        model.check_hook_names([name])
        if name.endswith("hook_pattern"):
            raise HookUnavailable(f"{name}: attention patterns are read with the hook backend only")
        by_name[name].append(checked_hook(name, fn))

    def apply(name: str, value: Tensor) -> Tensor:
        stub = SimpleNamespace(name=name)
        for fn in by_name.get(name, ()):
            new = fn(value, stub)
            if new is not None:
                value = new
        return value

    arch, m = model.architecture, model.cfg.residual_multiplier
    net = _traced(model)
    layers_path = _relative(arch.layers, arch.backbone)
    norm_path = _relative(arch.final_norm, arch.backbone)
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    mask_2d = inputs["attention_mask"]
    start = 0 if past_key_values is None else arch.kv_cache.length(past_key_values)
    wanted = set(by_name)
    try:
        # ``remote`` goes to nnsight only when asked: a model's forward that takes no **kwargs
        # would otherwise receive it.
        with model.starting_at(start), net.trace(**arch.hf_kwargs(inputs), **model.cache_kwargs(past_key_values, use_cache),
                       **({"remote": True} if remote else {})):
            if any(n.startswith(("encoder.", "projector.")) for n in wanted):
                _audio_sites(model, net, wanted, apply, rows=mask_2d.shape[0],
                             packed=arch.packed_lengths(inputs))
            for i in range(model.n_layers):
                b = f"blocks.{i}."
                layer = _envoy(net, f"{layers_path}.{i}")
                attn = _envoy(layer, arch.attention)
                if b + "hook_resid_pre" in wanted or b + "hook_resid_mid" in wanted:
                    pre = apply(b + "hook_resid_pre", layer.input)
                    if b + "hook_resid_pre" in wanted:
                        layer.input = pre
                if b + "hook_attn_mask" in wanted:
                    args, kwargs = attn.inputs
                    hidden = kwargs.get("hidden_states", args[0] if args else None)
                    mask = through_mask(partial(apply, b + "hook_attn_mask"), kwargs.get("attention_mask"), mask_2d,
                                        hidden.shape[1], start, hidden.device)
                    if mask is not None:
                        attn.inputs = (args, {**kwargs, "attention_mask": mask})
                if b + "attn.hook_z" in wanted:
                    proj = _envoy(attn, arch.attn_output_proj)
                    head_dim = head_dim_of(_module(model, i, arch), _module(model, i, arch, proj=True))
                    proj.input = through_heads(partial(apply, b + "attn.hook_z"), proj.input, head_dim)
                if b + "hook_attn_out" in wanted or b + "hook_resid_mid" in wanted:
                    output = attn.output
                    out = output[0]
                    if b + "hook_attn_out" in wanted:
                        out = through_branch(partial(apply, b + "hook_attn_out"), out, m)
                    if b + "hook_resid_mid" in wanted:
                        out = through_branch(partial(apply, b + "hook_resid_mid"), out, m, resid_pre=pre)
                    attn.output = (out, *output[1:])
                if b + "hook_mlp_out" in wanted:
                    mlp = _envoy(layer, arch.mlp)
                    output = mlp.output
                    out = output[0] if isinstance(output, tuple) else output
                    new = through_branch(partial(apply, b + "hook_mlp_out"), out, m)
                    mlp.output = (new, *output[1:]) if isinstance(output, tuple) else new
                if b + "hook_resid_post" in wanted:
                    output = layer.output
                    hidden = output[0] if isinstance(output, tuple) else output
                    new = apply(b + "hook_resid_post", hidden)
                    layer.output = (new, *output[1:]) if isinstance(output, tuple) else new
            if "ln_final.hook_normalized" in wanted:
                norm = _envoy(net, norm_path)
                norm.output = apply("ln_final.hook_normalized", norm.output)
            result = net.output.save()
    except RemoteUnavailable:
        raise
    except Exception as exc:
        if remote:
            raise RemoteUnavailable(f"remote execution failed: {exc}") from exc
        raise
    return result


def _audio_sites(model: HookedModel, net: Any, wanted: set[str], apply: Callable[[str, Tensor], Tensor],
                 rows: int, packed: dict[str, tuple[Tensor, int]] | None) -> None:
    """The encoder and projector sites, in the order the audio path runs them (a packed
    tower's frames shown per row, as the hook backend shows them)."""
    arch = model.architecture

    def at(name: str, stage: str, value: Tensor) -> Tensor:
        if packed is None:
            return apply(name, value)
        lengths, width = packed[stage]
        return through_packed(partial(apply, name), value, lengths, width)

    # encoder_missing() is None, so the description names every module of the audio path
    assert arch.encoder_layers is not None and arch.audio_encoder is not None
    assert arch.projector is not None and model.audio_path is not None
    layers_path = _relative(arch.encoder_layers, arch.backbone)
    if "encoder.hook_embed" in wanted:
        first = _envoy(net, f"{layers_path}.0")
        first.input = at("encoder.hook_embed", "encoder", first.input)
    for i in range(len(model.audio_path.layers)):
        name = f"encoder.blocks.{i}.hook_resid_post"
        if name in wanted:
            layer = _envoy(net, f"{layers_path}.{i}")
            output = layer.output
            layer.output = with_first(output, at(name, "encoder", first_tensor(output)))
    if "encoder.hook_out" in wanted:
        tower = _envoy(net, _relative(arch.encoder_output or arch.audio_encoder, arch.backbone))
        output = tower.output
        tower.output = with_first(output, at("encoder.hook_out", "encoder_out", first_tensor(output)))
    if "projector.hook_out" in wanted:
        proj = _envoy(net, _relative(arch.projector, arch.backbone))
        output = proj.output
        if packed is not None:
            proj.output = at("projector.hook_out", "projector", output)
        else:
            proj.output = through_projector(partial(apply, "projector.hook_out"), output, rows)


__all__ = ["RemoteUnavailable", "run_traced"]
