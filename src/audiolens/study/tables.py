"""Tables II and III of the paper as pure functions: lens results in, data frames out.

:func:`summarize` reduces each (model, attribute, prompt) lens result to its critical layer
(Eq. 4, with a bootstrap interval) and accuracy (the information score at the last layer and
last token, with a Wilson interval). Table II averages those over prompt formats, one column per
quantity; Table III correlates critical layer with accuracy across attributes × prompt formats.

Example:
    >>> import pandas as pd
    >>> s = pd.DataFrame({"model": ["m"] * 2, "attribute": ["gender", "gender"],
    ...                   "prompt": ["P1", "P2"], "critical_layer": [2.0, 3.0],
    ...                   "critical_layer_low": [1.5, 2.5], "critical_layer_high": [2.5, 3.5],
    ...                   "accuracy": [0.9, 0.7], "accuracy_low": [0.8, 0.6],
    ...                   "accuracy_high": [0.95, 0.8], "n": [10, 10]})
    >>> table2(s).loc[("m", "gender"), ["critical layer", "critical layer low", "accuracy %"]]
    critical layer         2.5
    critical layer low     2.0
    accuracy %            80.0
    Name: (m, gender), dtype: float64
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import metrics
from ..lenses.result import LensResult
from ..metrics import UndefinedCriticalLayer, WeakEvidence
from ..tasks import SAKURA_TASKS

if TYPE_CHECKING:
    from .records import RecordStore

SUMMARY_COLUMNS = (
    "model",
    "attribute",
    "prompt",
    "critical_layer",
    "critical_layer_low",
    "critical_layer_high",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "n",
)
LEVEL = 0.95  # of every interval in the tables: Wilson z = 1.96, bootstrap central 95 %
MIN_POINTS = 5  # Table III: fewer (attribute, prompt) points make r meaningless
MIN_SPREAD = 0.5  # Table III: critical layers spanning less than half a layer hardly vary


def summarize(
    results: Iterable[tuple[str, str, str, LensResult]],
    alpha: float = 0.2,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (model, attribute, prompt): critical layer, accuracy (0..1), their 95 %
    intervals and the sample count ``n``.

    ``critical_layer_low/high``: percentile bootstrap over the samples (``n_boot`` resamples,
    ``seed``; see :func:`audiolens.metrics.critical_layer_interval`). ``accuracy_low/high``:
    Wilson interval. An undefined critical layer (no layer above (1 + α)/|Y|) is NaN, and so is
    its interval when most resamples leave it undefined; the tables say so.
    """
    rows = []
    for model, attribute, prompt, res in results:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedCriticalLayer)  # NaN is reported in the tables
            layer = res.critical_layer(alpha)
        logits = res.logits_at("last")
        if res.targets is None:
            raise ValueError(f"{model}/{attribute}/{prompt}: the result has no targets "
                             "(pass labels= to model.prepare)")
        hits = metrics.hits(logits, res.targets)
        layer_lo, layer_hi = metrics.critical_layer_interval(
            hits, len(res.labels), alpha, level=LEVEL, n_boot=n_boot, seed=seed
        )
        acc_lo, acc_hi = metrics.wilson_interval(int(hits[-1].sum()), len(res))
        rows.append(
            {
                "model": model,
                "attribute": attribute,
                "prompt": prompt,
                "critical_layer": float(layer),
                "critical_layer_low": layer_lo,
                "critical_layer_high": layer_hi,
                "accuracy": res.accuracy(),
                "accuracy_low": acc_lo,
                "accuracy_high": acc_hi,
                "n": len(res),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def attribute_order(attributes: Iterable[str]) -> list[str]:
    """The paper's column order (gender, language, emotion, animal), then any others by name."""
    attributes = set(attributes)
    known = [a for a in SAKURA_TASKS if a in attributes]
    return known + sorted(attributes - set(known))


TABLE2_COLUMNS = (
    "n",
    "prompts",
    "critical layer",
    "critical layer low",
    "critical layer high",
    "defined prompts",
    "accuracy %",
    "accuracy % low",
    "accuracy % high",
)


def _mean_bounds(part: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """Mean of ``column`` and of its low/high bounds over prompt formats (NaN rows skipped for
    the value; a missing bound of a defined value makes the bound NaN)."""
    used = part.dropna(subset=[column])
    if used.empty:
        return math.nan, math.nan, math.nan
    return (
        float(used[column].mean()),
        float(used[f"{column}_low"].mean(skipna=False)),
        float(used[f"{column}_high"].mean(skipna=False)),
    )


def table2(summary: pd.DataFrame) -> pd.DataFrame:
    """Table II: one row per (model, attribute), one column per quantity, averaged over the
    prompt formats as in the paper.

    Columns (see ``TABLE2_COLUMNS``): ``n`` clips per prompt format (the smallest, should a run
    be incomplete), ``prompts`` averaged, the ``critical layer`` with its ``low`` and ``high``
    bounds, ``defined prompts`` (prompts whose critical layer exists; undefined ones are left
    out of its average, NaN when none), ``accuracy %`` with its bounds.

    A bound is the mean of the per-prompt 95 % bounds. The prompt formats share their clips, so
    their errors are correlated; whatever the correlation, the standard deviation of a mean is at
    most the mean of the standard deviations, so this interval is at least as wide as the mean's
    own (and equal to it when the prompt formats agree clip by clip).
    """
    missing = set(SUMMARY_COLUMNS) - set(summary.columns)
    if missing:
        raise ValueError(f"a summary needs the columns of summarize(); missing {sorted(missing)}")
    rows = []
    for model in dict.fromkeys(summary["model"]):
        part = summary[summary["model"] == model]
        for a in attribute_order(part["attribute"]):
            sub = part[part["attribute"] == a]
            layer = _mean_bounds(sub, "critical_layer")
            acc = _mean_bounds(sub, "accuracy")
            rows.append(
                {
                    "model": model,
                    "attribute": a,
                    "n": int(sub["n"].min()),
                    "prompts": len(sub),
                    "critical layer": layer[0],
                    "critical layer low": layer[1],
                    "critical layer high": layer[2],
                    "defined prompts": int(sub["critical_layer"].notna().sum()),
                    "accuracy %": 100 * acc[0],
                    "accuracy % low": 100 * acc[1],
                    "accuracy % high": 100 * acc[2],
                }
            )
    out = pd.DataFrame(rows, columns=["model", "attribute", *TABLE2_COLUMNS])
    return out.set_index(["model", "attribute"])


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (``scipy.stats.pearsonr``); NaN for fewer than three
    points or a constant input.

    Example:
        >>> r, p = pearson([1, 2, 3, 4], [2, 4, 5, 9])
        >>> round(r, 3), round(p, 3)
        (0.965, 0.035)
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} x values but {len(y)} y values")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    res = stats.pearsonr(x, y)
    return float(res.statistic), float(res.pvalue)


TABLE3_COLUMNS = (
    "model",
    "subset",
    "x",
    "y",
    "points",
    "n",
    "critical layer spread",
    "pearson_r",
    "p_value",
    "significant",
    "note",
)


def _points(sub: pd.DataFrame) -> str:
    """What a Table III row correlates over, e.g. "gender, language × P1, P2, P3"."""
    attrs = ", ".join(attribute_order(sub["attribute"]))
    prompts = ", ".join(sorted(set(sub["prompt"])))
    return f"{attrs} × {prompts}" if len(sub) else ""


def table3(summary: pd.DataFrame, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
    """Table III: per model, Pearson r and p between the critical layer (x) and the accuracy (y)
    over every (attribute, prompt format) point; with ``exclude``, a second row per model
    without those attributes.

    Points whose critical layer is undefined are dropped (``n`` counts the points used).
    Columns: ``model``, ``subset`` ("all" or "excluding gender"), ``x``, ``y``, ``points``
    (the attributes × prompt formats used), ``n``, ``critical layer spread`` (largest minus
    smallest critical layer), ``pearson_r``, ``p_value``, ``significant`` (p < 0.05) and
    ``note``. With fewer than ``MIN_POINTS`` points, or critical layers spanning less than
    ``MIN_SPREAD`` layer, r says little: ``note`` says why and a :class:`WeakEvidence` warning
    is raised.
    """
    exclude = [e for e in exclude if e in set(summary["attribute"])]
    rows = []
    for model, part in summary.groupby("model", sort=False):
        subsets = [("all", part)]
        if exclude:
            subsets.append(
                (f"excluding {', '.join(exclude)}", part[~part["attribute"].isin(exclude)])
            )
        for name, sub in subsets:
            sub = sub.dropna(subset=["critical_layer"])
            r, p = pearson(sub["critical_layer"], sub["accuracy"])
            spread = float(np.ptp(sub["critical_layer"])) if len(sub) else math.nan
            notes = []
            if len(sub) < MIN_POINTS:
                notes.append(f"only {len(sub)} points (< {MIN_POINTS})")
            if len(sub) and spread < MIN_SPREAD:
                notes.append(
                    f"critical layers span {spread:.2f} layer (< {MIN_SPREAD}): they hardly vary"
                )
            note = "; ".join(notes)
            if note:
                warnings.warn(
                    f"Table III, {model} ({name}): {note}; r says little", WeakEvidence,
                    stacklevel=2,
                )
            rows.append(
                {
                    "model": model,
                    "subset": name,
                    "x": "critical layer",
                    "y": "accuracy",
                    "points": _points(sub),
                    "n": len(sub),
                    "critical layer spread": spread,
                    "pearson_r": r,
                    "p_value": p,
                    "significant": bool(p < 0.05) if not math.isnan(p) else False,
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=list(TABLE3_COLUMNS))


def stack(frames: Iterable[tuple[Mapping[str, object], pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate frames, each with its ``keys`` as constant columns in front.

    Example:
        >>> import pandas as pd
        >>> stack([({"model": "m"}, pd.DataFrame({"x": [1, 2]}))])
          model  x
        0     m  1
        1     m  2
    """
    import pandas as pd

    parts = []
    for keys, df in frames:
        df = df.copy()
        for i, (name, value) in enumerate(keys.items()):
            df.insert(i, name, value)
        parts.append(df)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def over_records(store: RecordStore, table: Callable[[LensResult], pd.DataFrame]) -> pd.DataFrame:
    """``table`` (e.g. :func:`~audiolens.lenses.frames.lens_frame`) of every lens result in ``store``, stacked under
    ``model, attribute, prompt, intervention`` columns."""
    return stack(
        (
            {"model": k.model, "attribute": k.attribute, "prompt": k.prompt,
             "intervention": k.intervention},
            table(store.result(k.model, k.attribute, k.prompt, k.intervention)),
        )
        for k in store.record_keys()
    )


def to_markdown(df: pd.DataFrame, index: bool = True, floatfmt: str = ".3g") -> str:
    """A GitHub Markdown table of ``df`` (floats formatted with ``floatfmt``; NaN as "n/a";
    one column per level of a multi-index).

    Example:
        >>> print(to_markdown(pd.DataFrame({"a": [1.5]}, index=["m"])))
        |  | a |
        |---|---|
        | m | 1.5 |
    """

    def fmt(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return "n/a" if math.isnan(v) else format(float(v), floatfmt)
        return str(v).replace("|", "\\|")

    names = [n or "" for n in df.index.names] if index else []
    header = names + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in df.iterrows():
        keys = idx if isinstance(idx, tuple) else (idx,)
        cells = ([fmt(k) for k in keys] if index else []) + [fmt(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
