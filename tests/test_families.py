"""Every family :func:`audiolens.models.tiny` builds passes the checks in ``family_checks``."""

import family_checks as fc
import numpy as np
import pytest

import audiolens as al

FAMILIES = al.models.families()
LABELS = ["male", "female", "female"]


def family_clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for seconds, freq in [(1.0, 120), (2.2, 220), (0.6, 300)]:
        t = np.arange(int(seconds * 16000)) / 16000
        out.append((0.3 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.05, t.size)).astype(np.float32))
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    model = al.models.tiny(request.param, seed=0)
    fc.randomize_norm_gains(model.hf_model)
    task = al.sakura_task("gender")
    batch = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    return model, batch, task


@pytest.mark.parametrize("check", fc.CHECKS, ids=lambda f: f.__name__)
def test_family(case, check):
    check(*case)


@pytest.mark.parametrize("check", fc.ENCODER_CHECKS, ids=lambda f: f.__name__)
def test_family_encoder(case, check):
    check(*case)


def test_family_resid_mid(case):
    model, batch, task = case
    if model.architecture.resid_mid_unavailable:
        with pytest.raises(al.HookUnavailable, match=model.architecture.name):
            model.run_with_cache(batch, names_filter=["blocks.0.hook_resid_mid"])
    else:
        fc.resid_mid_is_exact(model, batch, task)


def test_family_padded_rows_equal_rows_alone(case):
    model, _, task = case
    fc.padded_rows_equal_rows_alone(model, family_clips(), task, LABELS)


def test_family_run_formats_equals_run_many(case):
    model, _, task = case
    fc.run_formats_equals_run_many(model, family_clips(), task, LABELS)


def test_family_nnsight_equals_hooks(case):
    fc.nnsight_equals_hooks(*case)
