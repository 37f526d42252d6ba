"""The paper's quantities as pure functions: arrays in, arrays out, no model in sight.

Per-layer arrays are indexed by layer number: length L + 1, index 0 = embedding output
(reported, never part of Eq. 4), index ℓ = output of decoder block ℓ.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float, Int

from .checks import finite_number, is_number, whole_number
from .errors import NonFiniteWarning, ParameterError, warn_user
from .errors import UndefinedCriticalLayer as UndefinedCriticalLayer
from .errors import WeakEvidence as WeakEvidence

ArrayLike = np.ndarray | torch.Tensor


def _np(x: ArrayLike | float) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def predictions(label_logits: Float[ArrayLike, "*lead batch n_labels"]) -> np.ndarray:
    """Index of the highest-scoring label (argmax over the label set, the last axis).

    A row with a NaN logit has no highest label: it predicts -1 (never a hit), with a
    :class:`NonFiniteWarning` (an argmax would return the NaN's index as if it won).

    Example:
        >>> predictions(np.array([[0.0, 2.0], [1.0, 0.0]]))
        array([1, 0])
    """
    logits = _np(label_logits)
    out = logits.argmax(axis=-1)
    nan = np.isnan(logits).any(axis=-1)
    if nan.any():
        warn_user(
            f"label logits are NaN in {int(nan.sum())} of {nan.size} rows; those rows predict no "
            "label (-1) and count as misses", NonFiniteWarning,
        )
        out = np.where(nan, -1, out)
    return out


def hits(
    label_logits: Float[ArrayLike, "*lead batch n_labels"], targets: Int[ArrayLike, " batch"]
) -> np.ndarray:
    """Per sample (last axis): is the target the label argmax? Boolean, shape ``(*lead, batch)``.

    The information score (Eq. 2) is its mean over samples; the intervals below resample it.

    Example:
        >>> hits(np.array([[[2.0, 1.0], [0.0, 3.0]]]), np.array([1, 1]))
        array([[False,  True]])
    """
    targets = _np(targets)
    n_labels = _np(label_logits).shape[-1]
    if targets.size and (not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= n_labels):
        raise ParameterError(f"targets must be label indices in 0..{n_labels - 1}, got {np.unique(targets)[:8].tolist()}")
    preds = predictions(label_logits)
    if preds.shape[-1] != targets.shape[-1]:
        raise ValueError(f"{preds.shape[-1]} samples in logits but {targets.shape[-1]} targets")
    if targets.shape[-1] == 0:
        raise ValueError("information scores need at least one sample")
    return preds == targets


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
    return hits(label_logits, targets).mean(axis=-1)


def wilson_interval(
    k: ArrayLike | int, n: ArrayLike | int, z: float = 1.96
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Wilson score interval of a proportion ``k / n`` (``z`` = 1.96: 95 %), elementwise.

    Unlike ``p ± z·sqrt(p(1 − p)/n)`` it stays inside [0, 1] and does not collapse to a point
    at ``k = 0`` or ``k = n``, where small subsets of clips often sit.

    Example:
        >>> lo, hi = wilson_interval(8, 10)
        >>> round(lo, 4), round(hi, 4)
        (0.4902, 0.9433)
    """
    k_arr, n_arr = np.asarray(_np(k), dtype=np.float64), np.asarray(_np(n), dtype=np.float64)
    if np.any(n_arr <= 0):
        raise ValueError(f"a proportion needs n > 0, got n = {n}")
    if np.any((k_arr < 0) | (k_arr > n_arr)):
        raise ValueError(f"k must lie in 0..n, got k = {k}, n = {n}")
    z = finite_number(z, "z", low=0, low_open=True)
    p, z2 = k_arr / n_arr, z * z
    denom = 1 + z2 / n_arr
    center = (p + z2 / (2 * n_arr)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n_arr + z2 / (4 * n_arr**2))
    # Clipped: at k = 0 or k = n the bound is 0 or 1 up to rounding.
    lo, hi = np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def info_score_interval(
    label_logits: Float[ArrayLike, "*lead batch n_labels"],
    targets: Int[ArrayLike, " batch"],
    z: float = 1.96,
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Wilson interval (see :func:`wilson_interval`) of Eq. 2 at each layer: ``(low, high)``,
    each shaped like :func:`info_scores`' result.

    Example:
        >>> logits = np.array([[[2.0, 1.0], [0.0, 3.0]]])  # one layer, both right
        >>> lo, hi = info_score_interval(logits, np.array([0, 1]))
        >>> lo.round(3), hi
        (array([0.342]), array([1.]))
    """
    h = hits(label_logits, targets)
    return wilson_interval(h.sum(axis=-1), h.shape[-1], z)


def contributions(
    info: Float[ArrayLike, "*lead layers"], n_labels: int, alpha: float = 0.2
) -> np.ndarray:
    """Eq. 3: ``max(0, I − (1 + α) / |Y|)`` for each layer.

    Example:
        >>> contributions(np.array([0.5, 0.7, 0.9]), n_labels=2, alpha=0.2)
        array([0. , 0.1, 0.3])
    """
    n_labels = whole_number(n_labels, "n_labels", low=2)
    alpha = finite_number(alpha, "alpha", low=0)
    info = np.asarray(_np(info), dtype=float)
    excess = info - (1.0 + alpha) / n_labels
    # Information scores are k/n fractions and the threshold is a short decimal over |Y|, so
    # a score exactly at the threshold can land a rounding error above it (0.4 - 1.2/3 =
    # 5.6e-17). Differences far below any 1/n (n < 10^9 samples) are that error: zero.
    return np.where(np.abs(excess) < _TIE, 0.0, np.maximum(0.0, excess))[()]


#: Below this, a difference between an information score and the Eq. 3 threshold is rounding.
_TIE = 1e-12


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
        warn_user(
            "critical layer undefined: no layer's information score exceeds "
            f"(1 + alpha) / |Y| = {(1 + alpha) / n_labels:.3f}; returning NaN",
            UndefinedCriticalLayer,
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(undefined, np.nan, (s * layers).sum(axis=-1) / np.where(undefined, 1, total))
    return float(out) if out.ndim == 0 else out


def bootstrap_info_scores(
    hits: Bool[ArrayLike, "*lead batch"], n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """Information scores of ``n_boot`` resamples of the samples (the last axis), drawn with
    replacement and shared by every leading axis (layers, prompt formats on the same clips).

    Shape ``(n_boot, *lead)``; deterministic for a seed.

    Example:
        >>> h = np.array([[True, False], [True, True]])  # 2 layers x 2 samples
        >>> bootstrap_info_scores(h, n_boot=3, seed=0).shape
        (3, 2)
    """
    h = np.asarray(_np(hits), dtype=float)
    n = h.shape[-1]
    if n == 0:
        raise ValueError("a bootstrap needs at least one sample")
    n_boot = whole_number(n_boot, "n_boot", low=1)
    # How often each sample is drawn in each resample: the same law as n draws with replacement.
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    return np.einsum("bn,...n->b...", counts, h) / n


def percentile_interval(
    draws: Float[ArrayLike, " n_boot *rest"], level: float = 0.95
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The central ``level`` interval of bootstrap draws (first axis); NaN draws are left out.

    When more than ``1 − level`` of the draws are NaN (e.g. a critical layer that most
    resamples leave undefined) the interval is NaN: the data cannot bound the quantity.

    Example:
        >>> percentile_interval(np.arange(41.0), level=0.5)  # quantiles 0.25 and 0.75
        (10.0, 30.0)
    """
    if not (is_number(level) and 0 < level < 1):
        raise ParameterError(f"level must lie strictly between 0 and 1, got {level!r}")
    d = np.asarray(_np(draws), dtype=float)
    defined = np.mean(~np.isnan(d), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN, handled below
        lo, hi = np.nanquantile(d, [(1 - level) / 2, (1 + level) / 2], axis=0)
    enough = defined >= level
    lo, hi = np.where(enough, lo, np.nan), np.where(enough, hi, np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def critical_layer_interval(
    hits: Bool[ArrayLike, "*lead layers batch"],
    n_labels: int,
    alpha: float = 0.2,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Percentile bootstrap interval of the critical layer (Eq. 4): resample the samples with
    replacement, recompute the information score per layer and Eq. 4, and take the central
    ``level`` of the resampled critical layers (see :func:`percentile_interval` for resamples
    where it is undefined).

    ``hits`` is :func:`hits` of the lens logits, shape ``(L + 1, batch)`` (or with leading axes).

    Example:
        >>> h = np.array([[False] * 4, [True, True, True, False], [True] * 4])  # 3 layers x 4
        >>> critical_layer(h.mean(axis=-1), n_labels=4, alpha=0.0)  # (0.5·1 + 0.75·2) / 1.25
        1.6
        >>> critical_layer_interval(h, n_labels=4, alpha=0.0)
        (1.5, 2.0)
    """
    info = bootstrap_info_scores(hits, n_boot, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedCriticalLayer)  # NaN draws are handled
        draws = critical_layer(info, n_labels, alpha)
    return percentile_interval(np.asarray(draws), level)


def correct(
    final_label_logits: Float[ArrayLike, "batch n_labels"], targets: Int[ArrayLike, " batch"]
) -> np.ndarray:
    """Which samples the model gets right: the target has the highest final-layer logit."""
    return predictions(final_label_logits) == _np(targets)


def best_layer(info: Float[ArrayLike, " layers"], *, min_layer: int = 1) -> int:
    """The layer (≥ ``min_layer``) with the highest information score; ties go to the earliest."""
    info = _np(info)
    return int(min_layer + np.argmax(info[min_layer:]))


def answer_changes(rows: Any, base: Any, by: list[str]) -> Any:
    """Per group of ``by``: how many answers in ``rows`` differ from the same clip's answer in
    ``base`` (``changed``), and how many of those turned right (``fixed``) or wrong
    (``broken``). Both are pandas frames with columns ``id, prediction, correct``.

    Example:
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"id": ["a", "b"], "k": [1, 1], "prediction": [0, 1], "correct": [True, False]})
        >>> base = pd.DataFrame({"id": ["a", "b"], "prediction": [1, 1], "correct": [False, False]})
        >>> answer_changes(rows, base, ["k"]).to_dict("records")
        [{'k': 1, 'changed': 1, 'fixed': 1, 'broken': 0}]
    """
    joined = rows.merge(base[["id", "prediction", "correct"]], on="id", suffixes=("", "_base"))
    joined["changed"] = joined["prediction"] != joined["prediction_base"]
    joined["fixed"] = joined["correct"] & ~joined["correct_base"]
    joined["broken"] = ~joined["correct"] & joined["correct_base"]
    return joined.groupby(by, sort=False)[["changed", "fixed", "broken"]].sum().reset_index()
