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
