"""Tables II and III on constructed numbers, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from audiolens.lens import LensResult
from audiolens.tables import pearson, summarize, table2, table3, to_markdown


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
    values = {  # (attribute, prompt) -> (critical layer, accuracy)
        ("gender", "P1"): (10.0, 0.80),
        ("gender", "P2"): (12.0, 0.90),
        ("gender", "P3"): (14.0, 0.85),
        ("language", "P1"): (20.0, 0.50),
        ("language", "P2"): (math.nan, 0.60),
        ("language", "P3"): (22.0, 0.70),
    }
    for (a, p), (layer, acc) in values.items():
        rows.append(
            {
                "model": "m",
                "attribute": a,
                "prompt": p,
                "critical_layer": layer,
                "accuracy": acc,
                "n": 10,
            }
        )
    return pd.DataFrame(rows)


def test_table2_averages_over_prompts():
    t = table2(summary_frame())
    assert list(t.index) == ["m"]
    # gender: (10 + 12 + 14) / 3 = 12, (80 + 90 + 85) / 3 = 85
    assert t.loc["m", "gender"] == "12.00 / 85.00"
    assert t.loc["m", "gender critical layer"] == pytest.approx(12.0)
    assert t.loc["m", "gender accuracy %"] == pytest.approx(85.0)
    # language: the undefined P2 layer is left out: (20 + 22) / 2 = 21; accuracy (50+60+70)/3
    assert t.loc["m", "language"] == "21.00 / 60.00"
    assert t.loc["m", "language defined prompts"] == 2
    assert t.loc["m", "gender defined prompts"] == 3
    md = to_markdown(t)
    assert md.splitlines()[0].startswith("| model | gender | language |")
    assert "| m | 12.00 / 85.00 | 21.00 / 60.00 |" in md


def test_table2_rows_are_models_and_columns_follow_the_paper():
    s = pd.concat([summary_frame(), summary_frame().assign(model="other", accuracy=1.0)])
    s = s.iloc[::-1]  # the paper's column order does not depend on row order
    t = table2(s)
    assert list(t.columns[:2]) == ["gender", "language"]
    assert t.loc["other", "gender"] == "12.00 / 100.00"


def test_table3_all_and_excluding_gender():
    x, y = with_correlation(-0.924, 9)
    attrs = ["language", "emotion", "animal"]
    rows = [
        {
            "model": "q",
            "attribute": attrs[i // 3],
            "prompt": f"P{i % 3 + 1}",
            "critical_layer": x[i],
            "accuracy": y[i],
            "n": 100,
        }
        for i in range(9)
    ]
    # Gender points that break the trend, as for Qwen in the paper.
    rows += [
        {
            "model": "q",
            "attribute": "gender",
            "prompt": f"P{k}",
            "critical_layer": 15.0 + k,
            "accuracy": 0.9 + 0.01 * k,
            "n": 100,
        }
        for k in (1, 2, 3)
    ]
    t = table3(pd.DataFrame(rows), exclude=["gender"])
    assert list(t["subset"]) == ["all", "excluding gender"]
    assert list(t["n"]) == [12, 9]
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
