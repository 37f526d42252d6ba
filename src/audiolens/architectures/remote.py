"""Loading model code shipped with a checkpoint (``trust_remote_code=True``) under transformers 5.

Code written for transformers 4 meets two changes at load time that no error reports:

- transformers checks that every package a remote modeling file names can be imported, even one
  imported only inside a method that is never called (:func:`importable`);
- it builds the model as an empty skeleton, loads the stored weights into it and fills the
  buffers a checkpoint does not store (non-persistent ones) with uninitialized memory, expecting
  the model's ``_init_weights`` to set them; transformers 4 code does not, so they hold garbage
  (:func:`restore_unsaved_buffers`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import torch
from torch import nn


@contextlib.contextmanager
def importable(names: tuple[str, ...]) -> Iterator[list[str]]:
    """While loading, let ``names`` that cannot be imported resolve to empty placeholder modules.

    The placeholders are removed afterwards, so a method that really imports one of them still
    fails as it would have. Yields the names that were replaced.

    Example:
        >>> with importable(("surely_not_installed_pkg",)) as placed:
        ...     import surely_not_installed_pkg
        >>> placed, "surely_not_installed_pkg" in sys.modules
        (['surely_not_installed_pkg'], False)
    """
    placed = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = ModuleType(name)
            placed.append(name)
    try:
        yield placed
    finally:
        for name in placed:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside keep their parameters on the meta device (no memory, no values) and
    their buffers where their code puts them."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign,assignment]  # patched while building
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def unsaved_buffers(model: nn.Module) -> list[str]:
    """Names of the buffers ``model`` does not store in its checkpoint (non-persistent ones)."""
    return [
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        for name in module._buffers
        if name in module._non_persistent_buffers_set and module._buffers[name] is not None
    ]


def restore_unsaved_buffers(model: nn.Module) -> list[str]:
    """Recompute ``model``'s non-persistent buffers with its own constructor (parameters on the
    meta device, so nothing is allocated for them) and copy them in. Returns their names.

    Example:
        >>> class Scaled(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.proj = nn.Linear(2, 2)
        ...         self.register_buffer("scale", torch.full((2,), 3.0), persistent=False)
        >>> m = Scaled()
        >>> m.scale.zero_()  # what an uninitialized buffer might hold
        tensor([0., 0.])
        >>> restore_unsaved_buffers(m), m.scale
        (['scale'], tensor([3., 3.]))
    """
    names = unsaved_buffers(model)
    if not names:
        return []
    config = getattr(model, "config", None)
    with parameters_on_meta():
        fresh = type(model)(copy.deepcopy(config)) if config is not None else type(model)()
    with torch.no_grad():
        for name in names:
            model.get_buffer(name).copy_(fresh.get_buffer(name))
    return names
