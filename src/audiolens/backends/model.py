"""What a backend reads of the wrapped model: the :class:`HookedModel` protocol.

Backends run against this description instead of importing the wrapper, so the wrapper can sit
above them (``hooked`` imports ``backends``, never the reverse).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from torch import nn

from ..architectures.base import WrappedModel


class HookedModel(WrappedModel, Protocol):
    """A :class:`~audiolens.architectures.base.WrappedModel` with named hook points.

    ``blocks[i]`` holds block i's HookPoints, ``ln_final`` the final norm's; ``chunk_start`` is
    the absolute position of the first token of the forward in progress (> 0 after a cached
    prefix); ``components_missing`` says why component hooks are absent (None when present).
    """

    blocks: nn.ModuleList
    ln_final: nn.Module
    cfg: Any
    #: the audio path's hook points (``hook_embed``, ``blocks[l].hook_resid_post``, ``hook_out``),
    #: present when ``encoder_missing`` is None
    encoder: nn.Module
    projector: nn.Module

    @property
    def encoder_missing(self) -> str | None: ...

    @property
    def encoder_layers(self) -> nn.ModuleList: ...

    @property
    def audio_encoder(self) -> nn.Module | None: ...

    @property
    def audio_projector(self) -> nn.Module | None: ...

    @property
    def encoder_output(self) -> nn.Module | None: ...

    @property
    def chunk_start(self) -> int: ...

    @property
    def components_missing(self) -> str | None: ...

    @property
    def n_layers(self) -> int: ...

    def starting_at(self, start: int) -> AbstractContextManager[None]: ...

    def check_hook_names(self, names: Sequence[str]) -> None: ...

    def cache_kwargs(self, cache: Any, use_cache: bool) -> dict[str, Any]: ...
