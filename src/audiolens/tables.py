"""Tables II and III of the paper as pure functions: lens results in, data frames out.

:func:`summarize` reduces each (model, attribute, prompt) lens result to its critical layer
(Eq. 4) and accuracy (the information score at the last layer and last token). Table II averages
those over prompt formats; Table III correlates them across attributes × prompt formats.

Example:
    >>> import pandas as pd
    >>> s = pd.DataFrame({"model": ["m"] * 2, "attribute": ["gender", "language"],
    ...                   "prompt": ["P1", "P1"], "critical_layer": [2.0, 3.0],
    ...                   "accuracy": [0.9, 0.6], "n": [10, 10]})
    >>> table2(s).loc["m", "gender"]
    '2.00 / 90.00'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .lens import LensResult
from .metrics import UndefinedCriticalLayer
from .tasks import SAKURA_TASKS

SUMMARY_COLUMNS = ("model", "attribute", "prompt", "critical_layer", "accuracy", "n")


def summarize(
    results: Iterable[tuple[str, str, str, LensResult]], alpha: float = 0.2
) -> pd.DataFrame:
    """One row per (model, attribute, prompt): critical layer, accuracy (0..1) and sample count.

    An undefined critical layer (no layer above (1 + α)/|Y|) is NaN; the tables say so.
    """
    rows = []
    for model, attribute, prompt, res in results:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedCriticalLayer)  # NaN is reported in the tables
            layer = res.critical_layer(alpha)
        rows.append(
            {
                "model": model,
                "attribute": attribute,
                "prompt": prompt,
                "critical_layer": float(layer),
                "accuracy": res.accuracy(),
                "n": len(res),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def attribute_order(attributes: Iterable[str]) -> list[str]:
    """The paper's column order (gender, language, emotion, animal), then any others by name."""
    attributes = set(attributes)
    known = [a for a in SAKURA_TASKS if a in attributes]
    return known + sorted(attributes - set(known))


def _cell(layer: float, accuracy: float) -> str:
    layer_text = "n/a" if math.isnan(layer) else f"{layer:.2f}"
    return f"{layer_text} / {100 * accuracy:.2f}"


def table2(summary: pd.DataFrame) -> pd.DataFrame:
    """Table II: per model (rows) and attribute, "critical layer / accuracy %" averaged over the
    prompt formats, plus numeric ``{attribute} critical layer`` and ``{attribute} accuracy %``
    columns.

    Critical layers that are undefined for some prompt are left out of that average (the
    ``{attribute} defined prompts`` column counts the ones used); "n/a" when none is defined.
    """
    attributes = attribute_order(summary["attribute"])
    grouped = summary.groupby(["model", "attribute"])
    mean = grouped[["critical_layer", "accuracy"]].mean()  # pandas skips NaN
    defined = grouped["critical_layer"].count()
    rows = {}
    for model in dict.fromkeys(summary["model"]):
        row: dict[str, object] = {}
        for a in attributes:
            if (model, a) not in mean.index:
                row[a] = ""
                continue
            layer, acc = mean.loc[(model, a)]
            row[a] = _cell(layer, acc)
        for a in attributes:
            have = (model, a) in mean.index
            row[f"{a} critical layer"] = mean.loc[(model, a), "critical_layer"] if have else np.nan
            row[f"{a} accuracy %"] = 100 * mean.loc[(model, a), "accuracy"] if have else np.nan
            row[f"{a} defined prompts"] = int(defined.loc[(model, a)]) if have else 0
        rows[model] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
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


def table3(summary: pd.DataFrame, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
    """Table III: per model, Pearson r and p between critical layers and accuracies over every
    (attribute, prompt) point; with ``exclude``, a second row per model without those attributes.

    Points whose critical layer is undefined are dropped (``n`` counts the points used).
    Columns: ``model``, ``subset`` ("all" or "excluding gender"), ``n``, ``pearson_r``,
    ``p_value``, ``significant`` (p < 0.05).
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
            rows.append(
                {
                    "model": model,
                    "subset": name,
                    "n": len(sub),
                    "pearson_r": r,
                    "p_value": p,
                    "significant": bool(p < 0.05) if not math.isnan(p) else False,
                }
            )
    return pd.DataFrame(
        rows, columns=["model", "subset", "n", "pearson_r", "p_value", "significant"]
    )


def to_markdown(df: pd.DataFrame, index: bool = True, floatfmt: str = ".3g") -> str:
    """A GitHub Markdown table of ``df`` (floats formatted with ``floatfmt``; NaN as "n/a").

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

    header = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in df.iterrows():
        cells = ([fmt(idx)] if index else []) + [fmt(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
