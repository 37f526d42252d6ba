"""How declarative interventions execute: PyTorch hooks (default) or an nnsight trace.

Both run the same ``(hook_name, fn)`` pairs that lenses and interventions produce, at the same
named sites, and give the same numbers. nnsight is what lets a run execute remotely (NDIF) or
under nnsight's own scheduling; the hook backend is the fastest locally.

- :mod:`~audiolens.backends.model`: :class:`HookedModel`, what a backend reads of the wrapper;
- :mod:`~audiolens.backends.sites`: the hook-site algebra both backends share (attention-mask
  maths, residual scaling, head split);
- :mod:`~audiolens.backends.torch_hooks`: PyTorch-hook routing and the hook factories;
- :mod:`~audiolens.backends.nnsight`: the same hooks run inside an nnsight trace;
- :func:`execute`: run the backbone with hooks on the chosen backend.

Example:
    >>> res = al.LogitLens(task).run(model, batch, backend="nnsight")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from ..errors import ParameterError
from .model import HookedModel

BACKENDS = ("hooks", "nnsight")
Hooks = Sequence[tuple[str, Callable[[Tensor, Any], Tensor | None]]]


def execute(
    model: HookedModel,
    inputs: dict[str, Tensor],
    hooks: Hooks = (),
    *,
    backend: str = "hooks",
    remote: bool = False,
    past_key_values: Any = None,
    use_cache: bool = False,
) -> Any:
    """Run ``model``'s backbone on ``inputs`` with ``hooks`` live; returns the backbone output
    (``last_hidden_state``, ``past_key_values``)."""
    if backend == "hooks":
        if remote:
            raise ParameterError("remote=True needs backend='nnsight'")
        with model.hooks(fwd_hooks=list(hooks)):
            return model.run_backbone(inputs, past_key_values=past_key_values, use_cache=use_cache)
    if backend == "nnsight":
        from .nnsight import run_traced

        return run_traced(model, inputs, hooks, remote=remote, past_key_values=past_key_values,
                          use_cache=use_cache)
    raise ParameterError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
