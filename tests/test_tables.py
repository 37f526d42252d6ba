"""Tables II and III on constructed numbers, checked by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from audiolens.lenses.result import LensResult
from audiolens.metrics import WeakEvidence
from audiolens.study.tables import pearson, summarize, table2, table3, to_markdown


def with_correlation(r: float, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x and y whose Pearson correlation is exactly ``r``: y mixes standardized x with a
    standardized vector orthogonal to it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    z = rng.standard_normal(n)
    x = (x - x.mean()) / x.std()
    z = z - z.mean()
    z -= (z @ x) / (x @ x) * x  # orthogonal to x (and still centred)
    z /= z.std()
    return 20 + 3 * x, 0.7 + 0.1 * (r * x + math.sqrt(1 - r * r) * z)


@pytest.mark.parametrize(
    "r, n, p_paper",
    [(-0.748, 12, 5.19e-3), (-0.924, 9, 3.68e-4), (-0.413, 12, 1.83e-1), (-0.879, 9, 1.82e-3)],
)
def test_pearson_matches_table3_of_the_paper(r, n, p_paper):
    x, y = with_correlation(r, n)
    got_r, got_p = pearson(x, y)
    assert got_r == pytest.approx(r, abs=1e-12)
    assert got_p == pytest.approx(p_paper, rel=0.03)


def test_pearson_degenerate_inputs_are_nan():
    assert all(math.isnan(v) for v in pearson([1, 2], [3, 4]))
    assert all(math.isnan(v) for v in pearson([1, 1, 1], [3, 4, 5]))
    with pytest.raises(ValueError):
        pearson([1, 2, 3], [1, 2])


def summary_frame() -> pd.DataFrame:
    rows = []
    values = {  # (attribute, prompt) -> (critical layer, low, high, accuracy, low, high)
        ("gender", "P1"): (10.0, 9.0, 11.0, 0.80, 0.70, 0.88),
        ("gender", "P2"): (12.0, 11.0, 14.0, 0.90, 0.80, 0.95),
        ("gender", "P3"): (14.0, 12.0, 15.0, 0.85, 0.75, 0.92),
        ("language", "P1"): (20.0, 19.0, 22.0, 0.50, 0.40, 0.60),
        ("language", "P2"): (math.nan, math.nan, math.nan, 0.60, 0.50, 0.70),
        ("language", "P3"): (22.0, 21.0, 23.0, 0.70, 0.60, 0.80),
    }
    for (a, p), (layer, llo, lhi, acc, alo, ahi) in values.items():
        rows.append(
            {
                "model": "m",
                "attribute": a,
                "prompt": p,
                "critical_layer": layer,
                "critical_layer_low": llo,
                "critical_layer_high": lhi,
                "accuracy": acc,
                "accuracy_low": alo,
                "accuracy_high": ahi,
                "n": 10,
            }
        )
    return pd.DataFrame(rows)


def test_table2_one_column_per_quantity_averaged_over_prompts():
    t = table2(summary_frame())
    assert list(t.index) == [("m", "gender"), ("m", "language")]
    assert list(t.columns) == [
        "n", "prompts", "critical layer", "critical layer low", "critical layer high",
        "defined prompts", "accuracy %", "accuracy % low", "accuracy % high",
    ]
    g = t.loc[("m", "gender")]
    # (10 + 12 + 14) / 3 = 12, bounds (9 + 11 + 12) / 3 and (11 + 14 + 15) / 3
    assert (g["critical layer"], g["critical layer low"], g["critical layer high"]) == (
        pytest.approx(12.0), pytest.approx(32 / 3), pytest.approx(40 / 3)
    )
    # (80 + 90 + 85) / 3 = 85, bounds (70 + 80 + 75) / 3 = 75 and (88 + 95 + 92) / 3 = 91.67
    assert g["accuracy %"] == pytest.approx(85.0)
    assert g["accuracy % low"] == pytest.approx(75.0)
    assert g["accuracy % high"] == pytest.approx(275 / 3)
    assert (g["n"], g["prompts"], g["defined prompts"]) == (10, 3, 3)
    # language: the undefined P2 layer is left out: (20 + 22) / 2 = 21, bounds 20 and 22.5;
    # the accuracy averages all three prompts: (50 + 60 + 70) / 3 = 60
    lang = t.loc[("m", "language")]
    assert lang["critical layer"] == pytest.approx(21.0)
    assert (lang["critical layer low"], lang["critical layer high"]) == (20.0, 22.5)
    assert lang["defined prompts"] == 2 and lang["accuracy %"] == pytest.approx(60.0)
    # No text cells repeat the numbers: every column but the counts is a float.
    assert all(t[c].dtype == float for c in t.columns if c not in ("n", "prompts", "defined prompts"))
    md = to_markdown(t)
    assert md.splitlines()[0] == (
        "| model | attribute | n | prompts | critical layer | critical layer low | "
        "critical layer high | defined prompts | accuracy % | accuracy % low | accuracy % high |"
    )
    assert "| m | gender | 10 | 3 | 12 | 10.7 | 13.3 | 3 | 85 | 75 | 91.7 |" in md


def test_table2_undefined_everywhere_and_missing_bounds():
    s = summary_frame()
    s.loc[s["attribute"] == "language", ["critical_layer", "critical_layer_low"]] = math.nan
    t = table2(s)
    lang = t.loc[("m", "language")]
    assert math.isnan(lang["critical layer"]) and lang["defined prompts"] == 0
    assert "| m | language | 10 | 3 | n/a | n/a | n/a | 0 |" in to_markdown(t)
    # A defined layer whose interval could not be bounded leaves the mean's bound open.
    s = summary_frame()
    s.loc[0, "critical_layer_high"] = math.nan
    g = table2(s).loc[("m", "gender")]
    assert g["critical layer"] == pytest.approx(12.0) and math.isnan(g["critical layer high"])
    with pytest.raises(ValueError, match="accuracy_low"):
        table2(summary_frame().drop(columns=["accuracy_low"]))


def test_table2_rows_are_models_then_attributes_in_the_paper_order():
    s = pd.concat([summary_frame(), summary_frame().assign(model="other", accuracy=1.0)])
    s = s.iloc[::-1]  # the paper's attribute order does not depend on row order
    t = table2(s)
    assert list(t.index) == [
        ("other", "gender"), ("other", "language"), ("m", "gender"), ("m", "language"),
    ]
    assert t.loc[("other", "gender"), "accuracy %"] == 100.0


def point(model, attribute, prompt, layer, acc) -> dict:
    return {
        "model": model, "attribute": attribute, "prompt": prompt, "critical_layer": layer,
        "critical_layer_low": layer - 0.5, "critical_layer_high": layer + 0.5, "accuracy": acc,
        "accuracy_low": acc - 0.05, "accuracy_high": acc + 0.05, "n": 100,
    }


def test_table3_all_and_excluding_gender():
    x, y = with_correlation(-0.924, 9)
    attrs = ["language", "emotion", "animal"]
    rows = [point("q", attrs[i // 3], f"P{i % 3 + 1}", x[i], y[i]) for i in range(9)]
    # Gender points that break the trend, as for Qwen in the paper.
    rows += [point("q", "gender", f"P{k}", 15.0 + k, 0.9 + 0.01 * k) for k in (1, 2, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 12 and 9 points spread over layers: nothing to warn
        t = table3(pd.DataFrame(rows), exclude=["gender"])
    assert list(t["subset"]) == ["all", "excluding gender"]
    assert list(t["n"]) == [12, 9]
    assert list(t["x"]) == ["critical layer"] * 2 and list(t["y"]) == ["accuracy"] * 2
    assert list(t["points"]) == [
        "gender, language, emotion, animal × P1, P2, P3",
        "language, emotion, animal × P1, P2, P3",
    ]
    assert t.loc[1, "critical layer spread"] == pytest.approx(x.max() - x.min())
    assert list(t["note"]) == ["", ""]
    excl = t.iloc[1]
    assert excl["pearson_r"] == pytest.approx(-0.924, abs=1e-9)
    assert excl["p_value"] == pytest.approx(3.68e-4, rel=0.03)
    assert bool(excl["significant"])
    r_all, p_all = pearson([r["critical_layer"] for r in rows], [r["accuracy"] for r in rows])
    assert t.iloc[0]["pearson_r"] == pytest.approx(r_all)
    assert t.iloc[0]["p_value"] == pytest.approx(p_all)


def test_table3_drops_undefined_critical_layers():
    t = table3(summary_frame(), exclude=[])
    assert list(t["subset"]) == ["all"]
    assert t.loc[0, "n"] == 5  # language P2 has no critical layer
    assert t.loc[0, "critical layer spread"] == 12.0  # 22 - 10


def test_table3_warns_on_few_points_and_flat_critical_layers():
    # 6 points whose critical layers span 0.08 layer: a correlation of noise.
    rows = [
        point("d", a, p, 3.5 + 0.02 * i, 0.9 - 0.01 * i)
        for i, (a, p) in enumerate((a, p) for a in ("gender", "language") for p in ("P1", "P2", "P3"))
    ]
    with pytest.warns(WeakEvidence) as caught:
        t = table3(pd.DataFrame(rows), exclude=["gender"])
    flat, few = t["note"]
    assert flat == "critical layers span 0.10 layer (< 0.5): they hardly vary"
    assert few.startswith("only 3 points (< 5); critical layers span 0.04 layer")
    assert len(caught) == 2 and "d (excluding gender)" in str(caught[1].message)
    assert t.loc[0, "pearson_r"] == pytest.approx(-1.0)  # still reported, with its note


def test_summarize_uses_the_lens_result_metrics():
    # Two samples, 2 layers (0..2), 2 labels, one position. Layer 2 gets both right.
    logits = torch.tensor(
        [
            [[[1.0, 0.0]], [[1.0, 0.0]]],  # layer 0: predicts 0, 0 -> 1/2
            [[[0.0, 1.0]], [[1.0, 0.0]]],  # layer 1: 1, 0 -> 0/2
            [[[1.0, 0.0]], [[0.0, 1.0]]],  # layer 2: 0, 1 -> 2/2
        ]
    )
    res = LensResult(logits, torch.tensor([0, 1]), ("a", "b"), ("last",), (5, 6), ["x", "y"])
    s = summarize([("m", "gender", "P1", res)])
    assert s.loc[0, "accuracy"] == 1.0
    # contributions (α = 0.2, |Y| = 2): layer 1: 0, layer 2: 1 - 0.6 = 0.4 -> critical layer 2
    assert s.loc[0, "critical_layer"] == pytest.approx(2.0)
    assert s.loc[0, "n"] == 2
    # Every resample of two clips both wrong at layer 1 and right at layer 2 gives 2 again.
    assert (s.loc[0, "critical_layer_low"], s.loc[0, "critical_layer_high"]) == (2.0, 2.0)
    # Wilson for 2 of 2: [n / (n + z²), 1] = [2 / 5.8416, 1]
    assert s.loc[0, "accuracy_low"] == pytest.approx(2 / 5.8416)
    assert s.loc[0, "accuracy_high"] == 1.0
