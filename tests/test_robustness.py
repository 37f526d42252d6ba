"""Misuse and faults get named errors or exact results: numeric edge cases, threads, audio in
odd forms, parameters, non-finite values, user hooks, tuned-lens files."""

import threading
import warnings

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens import metrics
from audiolens.errors import AudiolensError, AudiolensWarning, UndefinedCriticalLayer


# ----------------------------------------------------------------------------- numerics
def test_information_score_exactly_at_the_threshold_contributes_nothing():
    # 0.4 = (1 + 0.2) / 3 exactly in rational terms; in floats 0.4 - 1.2/3 = 5.6e-17.
    with pytest.warns(UndefinedCriticalLayer):
        assert np.isnan(metrics.critical_layer(np.array([0, 0.4, 0.2, 0.2]), n_labels=3, alpha=0.2))
    # 6 labels: 1.2/6 = 0.2 = 1/5 of the samples.
    assert metrics.contributions(np.array([0.2, 1 / 5, 2 / 10]), n_labels=6, alpha=0.2).tolist() == [0, 0, 0]
    # Just above the threshold by one sample in a thousand still counts.
    assert metrics.contributions(np.array([0.401]), n_labels=3, alpha=0.2)[0] == pytest.approx(0.001)


def test_tuned_lens_trains_with_gradients_switched_off_outside(tiny_model, clips):
    prompts = [al.sakura_task("gender").prompt("P3")]
    with torch.set_grad_enabled(False):
        lens = al.TunedLens.train(tiny_model, clips, prompts=prompts, steps=3, progress=False)
        assert not torch.is_grad_enabled()  # the caller's setting is back
    assert lens.translators.weight.abs().sum() > 0  # it did take steps


# ----------------------------------------------------------------------------- threads
def test_runs_from_several_threads_equal_single_thread_runs(tiny_model, gender_batch, gender_task):
    lens = al.LogitLens(gender_task)
    variants = {"plain": [], "mask": [al.AudioMask()], "early": [al.AudioMask(layers=[1])]}
    expected = {k: lens.run(tiny_model, gender_batch, v).label_logits for k, v in variants.items()}
    cached_name = tiny_model.resid_name(2)
    _, cache = tiny_model.run_with_cache(gender_batch, names_filter=[cached_name], positions="last")
    expected_cache = cache[cached_name]
    errors, mismatches = [], []
    start = threading.Barrier(4)

    def work(seed: int) -> None:
        start.wait()
        order = np.random.default_rng(seed).permutation(list(variants) * 3)
        try:
            for name in order:
                got = lens.run(tiny_model, gender_batch, variants[name]).label_logits
                if not torch.equal(got, expected[name]):
                    mismatches.append(name)
                _, c = tiny_model.run_with_cache(gender_batch, names_filter=[cached_name], positions="last")
                if not torch.equal(c[cached_name], expected_cache):
                    mismatches.append("cache")
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not mismatches, mismatches
    assert not any(hp.fwd_hooks for hp in tiny_model.hook_dict.values())  # nothing left behind
