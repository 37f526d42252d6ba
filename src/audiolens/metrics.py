"""The paper's quantities as pure functions: arrays in, arrays out, no model in sight.

Per-layer arrays are indexed by layer number: length L + 1, index 0 = embedding output
(reported, never part of Eq. 4), index ℓ = output of decoder block ℓ.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from jaxtyping import Float, Int

ArrayLike = np.ndarray | torch.Tensor


class UndefinedCriticalLayer(UserWarning):
    """Every contribution was zero, so Eq. 4 has no value (NaN is returned)."""


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def predictions(label_logits: Float[ArrayLike, "*lead batch n_labels"]) -> np.ndarray:
    """Index of the highest-scoring label (argmax over the label set, the last axis)."""
    return _np(label_logits).argmax(axis=-1)


def info_scores(
    label_logits: Float[ArrayLike, "*lead batch n_labels"], targets: Int[ArrayLike, " batch"]
) -> np.ndarray:
    """Eq. 2: the fraction of samples whose label argmax equals the target.

    Softmax is monotonic, so the argmax of label logits equals the argmax of the label
    probabilities p(y) of Eq. 1. With ``label_logits`` of shape ``(L + 1, batch, n_labels)``
    the result has shape ``(L + 1,)``.

    Example:
        >>> logits = np.array([[[2.0, 1.0], [0.0, 3.0]],   # layer 0: both right
        ...                    [[0.0, 1.0], [0.0, 3.0]]])  # layer 1: first wrong
        >>> info_scores(logits, np.array([0, 1]))
        array([1. , 0.5])
    """
    targets = _np(targets)
    preds = predictions(label_logits)
    if preds.shape[-1] != targets.shape[-1]:
        raise ValueError(f"{preds.shape[-1]} samples in logits but {targets.shape[-1]} targets")
    if targets.shape[-1] == 0:
        raise ValueError("information scores need at least one sample")
    return (preds == targets).mean(axis=-1)


def contributions(
    info: Float[ArrayLike, "*lead layers"], n_labels: int, alpha: float = 0.2
) -> np.ndarray:
    """Eq. 3: ``max(0, I − (1 + α) / |Y|)`` for each layer.

    Example:
        >>> contributions(np.array([0.5, 0.7, 0.9]), n_labels=2, alpha=0.2)
        array([0. , 0.1, 0.3])
    """
    if n_labels < 2:
        raise ValueError(f"need at least two labels, got {n_labels}")
    if alpha < 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}")
    return np.maximum(0.0, _np(info) - (1.0 + alpha) / n_labels)


def critical_layer(
    info: Float[ArrayLike, "*lead layers"], n_labels: int, alpha: float = 0.2
) -> np.ndarray | float:
    """Eq. 4: the contribution-weighted mean layer ``Σ s·ℓ / Σ s`` over ℓ = 1..L.

    ``info`` is indexed by layer number (index 0, the embedding output, is left out). When
    every contribution is zero the critical layer is undefined: NaN with an
    :class:`UndefinedCriticalLayer` warning.

    Example:
        >>> round(float(critical_layer(np.array([0.5, 0.5, 0.7, 0.9]), n_labels=2)), 4)
        2.75
    """
    s = contributions(info, n_labels, alpha)[..., 1:]
    layers = np.arange(1, s.shape[-1] + 1)
    total = s.sum(axis=-1)
    undefined = total == 0
    if np.any(undefined):
        warnings.warn(
            "critical layer undefined: no layer's information score exceeds "
            f"(1 + alpha) / |Y| = {(1 + alpha) / n_labels:.3f}; returning NaN",
            UndefinedCriticalLayer,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(undefined, np.nan, (s * layers).sum(axis=-1) / np.where(undefined, 1, total))
    return float(out) if out.ndim == 0 else out


def correct(
    final_label_logits: Float[ArrayLike, "batch n_labels"], targets: Int[ArrayLike, " batch"]
) -> np.ndarray:
    """Which samples the model gets right: the target has the highest final-layer logit."""
    return predictions(final_label_logits) == _np(targets)


def best_layer(info: Float[ArrayLike, " layers"], *, min_layer: int = 1) -> int:
    """The layer (≥ ``min_layer``) with the highest information score; ties go to the earliest."""
    info = _np(info)
    return int(min_layer + np.argmax(info[min_layer:]))
