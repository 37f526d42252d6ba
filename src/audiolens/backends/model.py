"""What a backend reads of the wrapped model: the :class:`HookedModel` protocol.

Backends run against this description instead of importing the wrapper, so the wrapper can sit
above them (``hooked`` imports ``backends``, never the reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from torch import Tensor, nn
from transformer_lens import ActivationCache
from transformer_lens.hook_points import HookPoint

from ..architectures.base import AudioPath, WrappedModel
from ..batch import AudioBatch, Positions


class AttnHooks(Protocol):
    """A block's per-head hook points: ``hook_z`` ``(batch, seq, head, d_head)`` and
    ``hook_pattern`` ``(batch, head, query, key)``."""

    hook_z: HookPoint
    hook_pattern: HookPoint


class BlockHooks(Protocol):
    """The hook points of one decoder block. ``hook_resid_mid`` may be absent (read it with
    ``getattr``); ``hook_attn_out``, ``hook_mlp_out`` and ``attn`` are absent when the model's
    ``components_missing`` says why."""

    hook_resid_pre: HookPoint
    hook_resid_post: HookPoint
    hook_attn_mask: HookPoint
    hook_mlp_out: HookPoint
    attn: AttnHooks


class NormHooks(Protocol):
    """The final norm's hook point."""

    hook_normalized: HookPoint


class EncoderBlockHooks(Protocol):
    """The hook point of one encoder layer: ``hook_resid_post``."""

    hook_resid_post: HookPoint


class EncoderHooks(Protocol):
    """The audio tower's hook points: ``hook_embed`` (absent when the tower has no layers),
    ``blocks[l].hook_resid_post`` and ``hook_out``."""

    hook_embed: HookPoint
    blocks: nn.ModuleList  # of EncoderBlockHooks
    hook_out: HookPoint


class ProjectorHooks(Protocol):
    """The projector's hook point."""

    hook_out: HookPoint


class HookedModel(WrappedModel, Protocol):
    """A :class:`~audiolens.architectures.base.WrappedModel` with named hook points.

    The hook points: ``blocks[i]`` holds block i's, ``ln_final`` the final norm's, ``encoder``
    and ``projector`` the audio path's (present when ``audio_path`` is). What the family
    offers: ``n_layers`` decoder blocks, their component hooks unless ``components_missing``
    says why not, and the HF modules of its audio path (None: no encoder hooks). The run in
    progress: ``chunk_start`` is the absolute position of its first token (> 0 after a cached
    prefix).
    """

    blocks: nn.ModuleList
    cfg: Any
    hook_dict: dict[str, Any]  # hook name -> HookPoint (TransformerLens)

    @property
    def ln_final(self) -> NormHooks: ...

    @property
    def encoder(self) -> EncoderHooks: ...

    @property
    def projector(self) -> ProjectorHooks: ...

    @property
    def n_layers(self) -> int: ...

    @property
    def components_missing(self) -> str | None: ...

    @property
    def audio_path(self) -> AudioPath | None: ...

    @property
    def chunk_start(self) -> int: ...

    def resid_name(self, layer: int) -> str: ...

    def starting_at(self, start: int) -> AbstractContextManager[None]: ...

    def check_hook_names(self, names: Sequence[str]) -> None: ...

    def cache_kwargs(self, cache: Any, use_cache: bool) -> dict[str, Any]: ...

    def hooks(self, fwd_hooks: list[Any] = ...) -> AbstractContextManager[Any]: ...

    def run_with_cache(
        self, batch: AudioBatch | dict[str, Tensor], *,
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = ...,
        positions: Positions = ..., return_type: str | None = ..., device: Any = ...,
    ) -> tuple[Tensor | None, ActivationCache]: ...

    def run_backbone(
        self, inputs: dict[str, Tensor], *, past_key_values: Any = None, use_cache: bool = False, **kwargs: Any
    ) -> Any: ...
