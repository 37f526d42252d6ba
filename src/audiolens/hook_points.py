"""The tree of named hook points a :class:`~audiolens.hooked.HookedAudioLM` exposes, one
:class:`~transformer_lens.hook_points.HookPoint` module per name (TransformerLens names each by
its module path, e.g. ``ln_final.hook_normalized``):

- ``blocks.{l}.hook_resid_pre``   input of decoder block l (l = 0..L-1)
- ``blocks.{l}.hook_resid_mid``   after block l's attention, before its MLP (absent, with the
  reason given on request, where the family's architecture cannot define it exactly)
- ``blocks.{l}.hook_resid_post``  output of block l
- ``blocks.{l}.hook_attn_mask``   block l's attention mask as ``(batch, 1, query, key)`` bools,
  True where a query may attend to a key (for masking interventions)
- ``ln_final.hook_normalized``    output of the final norm

and, on families whose architecture describes its audio encoder (``model.encoder_missing`` says
why not, elsewhere):

- ``encoder.hook_embed``                 input of the encoder's first layer ``(batch, frames, d_encoder)``
- ``encoder.blocks.{l}.hook_resid_post`` output of encoder layer l (l = 0..n_encoder_layers-1)
- ``encoder.hook_out``                   the audio tower's output (after its final norm and pooling)
- ``projector.hook_out``                 the projector's output ``(batch, audio tokens, d_model)``

Their frame axes (valid frames, seconds) are ``batch.frame_mask(name)`` / ``batch.frame_seconds(name)``.

Layer numbers in the paper's sense (ℓ = 0 embedding output, ℓ = output of block ℓ) map onto
these names with :meth:`~audiolens.hooked.HookedAudioLM.resid_name`.

Example:
    >>> [name for name, _ in BlockHooks(with_mid=False).named_modules() if name]
    ['hook_resid_pre', 'hook_resid_post', 'hook_attn_mask', 'hook_attn_out', 'hook_mlp_out', 'attn', 'attn.hook_z', 'attn.hook_pattern']
"""

from __future__ import annotations

import inspect
from collections.abc import Collection

from torch import nn
from transformer_lens.hook_points import HookPoint


class HookPointNode(nn.Module):
    """A node of the hook-point tree: a HookPoint for every ``hook_*`` name its class annotates,
    in that order, but those ``without`` (TransformerLens names each by its module path, e.g.
    ``ln_final.hook_normalized``)."""

    def __init__(self, without: Collection[str] = ()) -> None:
        super().__init__()
        for name in inspect.get_annotations(type(self)):
            if name.startswith("hook_") and name not in without:
                setattr(self, name, HookPoint())


class AttnHooks(HookPointNode):
    hook_z: HookPoint
    hook_pattern: HookPoint


class BlockHooks(HookPointNode):
    """A decoder block's hook points; those the family cannot define exactly are absent."""

    hook_resid_pre: HookPoint
    hook_resid_mid: HookPoint
    hook_resid_post: HookPoint
    hook_attn_mask: HookPoint
    hook_attn_out: HookPoint
    hook_mlp_out: HookPoint
    attn: AttnHooks

    def __init__(self, with_mid: bool = True, with_components: bool = True) -> None:
        mid = () if with_mid else ("hook_resid_mid",)
        super().__init__(without=mid if with_components else (*mid, "hook_attn_out", "hook_mlp_out"))
        if with_components:
            self.attn = AttnHooks()


class EncoderBlockHooks(HookPointNode):
    hook_resid_post: HookPoint


class EncoderHooks(nn.Module):
    def __init__(self, n_layers: int) -> None:
        super().__init__()
        if n_layers:  # without layers nothing separates the front end from the tower's output
            self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(EncoderBlockHooks() for _ in range(n_layers))
        self.hook_out = HookPoint()


class ProjectorHooks(HookPointNode):
    hook_out: HookPoint


class FinalNormHooks(HookPointNode):
    hook_normalized: HookPoint


def is_audio_hook(name: str) -> bool:
    """Whether ``name`` is an encoder or projector hook (frames, not token positions)."""
    return name.startswith(("encoder.", "projector."))


# The hook points of the attention and MLP outputs, absent where the family cannot split them.
COMPONENT_HOOKS = ("hook_attn_out", "hook_mlp_out", "attn.hook_z", "attn.hook_pattern")
# Hook points whose query axis is the third, (batch, head, query, key).
QUERY_AXIS_2 = ("hook_attn_mask", "hook_pattern")
