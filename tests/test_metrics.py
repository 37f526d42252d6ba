"""Eq. 2–4 against numbers worked out by hand."""

import warnings

import numpy as np
import pytest
import torch

from audiolens import metrics


def test_info_scores_hand_computed():
    # 3 layers x 4 samples x 3 labels; targets 0, 1, 2, 0.
    logits = np.zeros((3, 4, 3))
    logits[0, :, 0] = 1.0                      # always predicts label 0: 2 of 4 right
    logits[1, [0, 1, 2, 3], [0, 1, 2, 0]] = 1  # all right
    logits[2, [0, 1, 2, 3], [1, 2, 0, 1]] = 1  # all wrong
    info = metrics.info_scores(logits, np.array([0, 1, 2, 0]))
    np.testing.assert_array_equal(info, [0.5, 1.0, 0.0])
    # torch in, same numbers out
    np.testing.assert_array_equal(metrics.info_scores(torch.tensor(logits), torch.tensor([0, 1, 2, 0])), info)


def test_info_scores_shape_errors():
    with pytest.raises(ValueError, match="samples"):
        metrics.info_scores(np.zeros((2, 3, 2)), np.array([0, 1]))


def test_contributions_hand_computed():
    # |Y| = 4, alpha = 0.2 -> threshold 0.3
    s = metrics.contributions(np.array([0.25, 0.3, 0.5, 0.9]), n_labels=4, alpha=0.2)
    np.testing.assert_allclose(s, [0.0, 0.0, 0.2, 0.6])


def test_critical_layer_hand_computed():
    # |Y| = 2, alpha = 0.2 -> threshold 0.6. Layers 1..4 with I = 0.5, 0.7, 0.9, 0.6.
    info = np.array([0.99, 0.5, 0.7, 0.9, 0.6])  # index 0 (embedding) must be ignored
    # s = 0, 0.1, 0.3, 0 -> (2*0.1 + 3*0.3) / 0.4 = 2.75
    assert metrics.critical_layer(info, n_labels=2, alpha=0.2) == pytest.approx(2.75)
    # alpha = 0 -> threshold 0.5: s = 0, 0.2, 0.4, 0.1 -> (0.4 + 1.2 + 0.4) / 0.7
    assert metrics.critical_layer(info, n_labels=2, alpha=0.0) == pytest.approx(2.0 / 0.7)


def test_critical_layer_all_zero_is_nan_with_warning():
    info = np.array([0.9, 0.5, 0.55, 0.6])  # nothing above 0.6 for |Y| = 2
    with pytest.warns(metrics.UndefinedCriticalLayer, match="undefined"):
        value = metrics.critical_layer(info, n_labels=2)
    assert np.isnan(value)


def test_critical_layer_batched_rows():
    info = np.array([[0.0, 0.5, 0.7, 0.9], [0.0, 0.5, 0.5, 0.5]])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = metrics.critical_layer(info, n_labels=2)
    assert out[0] == pytest.approx((2 * 0.1 + 3 * 0.3) / 0.4)
    assert np.isnan(out[1])


def test_correct_and_best_layer():
    final = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]])
    np.testing.assert_array_equal(metrics.correct(final, np.array([0, 0, 0])), [True, False, True])
    assert metrics.best_layer(np.array([0.9, 0.2, 0.8, 0.8, 0.1])) == 2  # index 0 skipped, tie -> earliest


def test_contributions_validate():
    with pytest.raises(ValueError):
        metrics.contributions(np.array([0.5]), n_labels=1)
    with pytest.raises(ValueError):
        metrics.contributions(np.array([0.5]), n_labels=2, alpha=-0.1)


def test_wilson_interval_hand_computed():
    # k = 8, n = 10, z = 1.96: p = 0.8, z² = 3.8416, 1 + z²/n = 1.38416
    # centre = (0.8 + 3.8416 / 20) / 1.38416 = 0.99208 / 1.38416 = 0.716738
    # half = 1.96 / 1.38416 · sqrt(0.8 · 0.2 / 10 + 3.8416 / 400) = 1.416021 · sqrt(0.025604)
    #      = 0.226582
    lo, hi = metrics.wilson_interval(8, 10)
    assert lo == pytest.approx(0.716738 - 0.226582, abs=2e-6)  # 0.4902, as in the tables
    assert hi == pytest.approx(0.716738 + 0.226582, abs=2e-6)  # 0.9433
    # k = 0 and k = n: the bounds are 0 and 1, the others n/(n + z²) away.
    lo0, hi0 = metrics.wilson_interval(0, 10)
    assert lo0 == 0.0 and hi0 == pytest.approx(3.8416 / 13.8416)
    lo1, hi1 = metrics.wilson_interval(10, 10)
    assert hi1 == 1.0 and lo1 == pytest.approx(10 / 13.8416)
    # Elementwise over arrays, and z sets the level (z = 0 would be the point itself).
    lo, hi = metrics.wilson_interval(np.array([8, 0]), np.array([10, 10]))
    np.testing.assert_allclose(lo, [0.716738 - 0.226582, 0.0], atol=2e-6)
    lo99, hi99 = metrics.wilson_interval(8, 10, z=2.576)
    assert lo99 < 0.4902 and hi99 > 0.9433


@pytest.mark.parametrize("k, n, z", [(-1, 10, 1.96), (11, 10, 1.96), (0, 0, 1.96), (1, 2, 0.0)])
def test_wilson_interval_refuses_bad_input(k, n, z):
    with pytest.raises(ValueError):
        metrics.wilson_interval(k, n, z)


def test_info_score_interval_is_wilson_per_layer():
    # 2 layers x 5 samples x 2 labels, targets all 0; layer 0 gets 1 right, layer 1 gets 4.
    logits = np.zeros((2, 5, 2))
    logits[:, :, 1] = 1.0
    logits[0, :1, 0] = 2.0
    logits[1, :4, 0] = 2.0
    lo, hi = metrics.info_score_interval(logits, np.zeros(5, dtype=int))
    # k = 4, n = 5: p = 0.8, 1 + z²/n = 1.76832, centre = (0.8 + 0.38416) / 1.76832 = 0.669653
    # half = 1.96 / 1.76832 · sqrt(0.032 + 3.8416 / 100) = 1.108397 · 0.265360 = 0.294124
    assert lo[1] == pytest.approx(0.669653 - 0.294124, abs=2e-6)
    assert hi[1] == pytest.approx(0.669653 + 0.294124, abs=2e-6)
    # k = 1 is the mirror image of k = 4.
    assert lo[0] == pytest.approx(1 - hi[1]) and hi[0] == pytest.approx(1 - lo[1])


def test_bootstrap_critical_layer_on_a_case_with_known_resamples():
    # Two samples; a is right only at layer 1, b only at layer 3 (|Y| = 4, α = 0: threshold 0.25).
    # Resamples {a, a} (p = 1/4): critical layer 1; {b, b} (1/4): 3; {a, b} (1/2): info 0.5 at
    # layers 1 and 3, equal weights, so 2.
    hits = np.zeros((4, 2), dtype=bool)  # layers 0..3 x samples a, b
    hits[1, 0] = hits[3, 1] = True
    info = metrics.bootstrap_info_scores(hits, n_boot=4000, seed=1)
    draws = metrics.critical_layer(info, n_labels=4, alpha=0.0)
    values, counts = np.unique(draws, return_counts=True)
    np.testing.assert_array_equal(values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)
    assert metrics.critical_layer_interval(hits, n_labels=4, alpha=0.0, n_boot=4000) == (1.0, 3.0)
    # The central 40 % (quantiles 0.3 and 0.7) lies inside the middle value's half of the mass.
    assert metrics.critical_layer_interval(hits, 4, 0.0, level=0.4, n_boot=4000) == (2.0, 2.0)


def test_bootstrap_of_identical_samples_is_the_point_itself_and_seeded():
    one = np.array([False, False, True, True, True])  # right from layer 2 on
    hits = np.repeat(one[:, None], 7, axis=1)
    # s = 0.8 at layers 2, 3, 4 (|Y| = 2, α = 0.2): critical layer 3 in every resample.
    assert metrics.critical_layer_interval(hits, n_labels=2) == pytest.approx((3.0, 3.0))
    rng = np.random.default_rng(0)
    mixed = rng.random((5, 30)) < 0.8
    a = metrics.bootstrap_info_scores(mixed, n_boot=50, seed=3)
    np.testing.assert_array_equal(a, metrics.bootstrap_info_scores(mixed, n_boot=50, seed=3))
    assert not np.array_equal(a, metrics.bootstrap_info_scores(mixed, n_boot=50, seed=4))
    # Each resample keeps n samples: its scores are multiples of 1/30 within [0, 1].
    np.testing.assert_allclose(a * 30, np.round(a * 30), atol=1e-9)


def test_bootstrap_interval_is_nan_when_most_resamples_leave_it_undefined():
    # 7 of 10 right at layer 2 only: I = 0.7 > 0.6, so the critical layer is 2, but a resample
    # with 6 or fewer of them (P(Binomial(10, 0.7) ≤ 6) = 0.35 > 5 %) has none.
    hits = np.zeros((3, 10), dtype=bool)
    hits[2, :7] = True
    assert metrics.critical_layer(hits.mean(-1), n_labels=2) == 2.0
    lo, hi = metrics.critical_layer_interval(hits, n_labels=2)
    assert np.isnan(lo) and np.isnan(hi)


def test_percentile_interval_hand_computed():
    assert metrics.percentile_interval(np.arange(41.0), level=0.5) == (10.0, 30.0)
    # Column-wise; 4 NaN of 100 draws fit a 95 % level, 6 do not.
    d = np.tile(np.arange(100.0)[:, None], (1, 2))
    d[:4, 0] = np.nan
    d[:6, 1] = np.nan
    lo, _ = metrics.percentile_interval(d, level=0.95)
    assert lo[0] == pytest.approx(np.quantile(np.arange(4.0, 100), 0.025)) and np.isnan(lo[1])
    with pytest.raises(ValueError):
        metrics.percentile_interval(d, level=1.0)
