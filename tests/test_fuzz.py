"""Property-based misuse: the public constructors and ``prepare`` given arbitrary values either
work or raise one of the library's own errors (never a raw error from deep inside numpy, torch
or transformers), and where a reference exists the result equals it."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import audiolens as al
from audiolens.audio import prepare_waveform
from audiolens.errors import AudiolensError, AudiolensWarning

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["last", "attribute", "audio", "male", "P3", "blocks.0.hook_resid_post"]),
)
anything = st.one_of(scalars, st.lists(scalars, max_size=4), st.tuples(scalars, scalars),
                     st.dictionaries(st.text(max_size=3), scalars, max_size=2))


def only_library_errors(make):
    """Call ``make``; an exception that escapes must be an AudiolensError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudiolensWarning)
        try:
            return make()
        except AudiolensError:
            return None


@FUZZ
@given(name=anything, labels=anything, question=anything, prefix=anything, word=anything, fmt=anything)
def test_task_and_prompt(name, labels, question, prefix, word, fmt):
    task = only_library_errors(lambda: al.Task(name, labels, question, prefix, word))
    if task is not None:
        assert all(isinstance(x, str) and x.strip() == x and x for x in task.labels)
        only_library_errors(lambda: task.prompt(fmt))
    only_library_errors(lambda: al.Prompt(prefix, word, question, labels=labels))


@FUZZ
@given(keys=anything, queries=anything, layers=anything, source=anything, scale=anything, target=anything,
       position=anything, gap=anything, hook_name=anything)
def test_interventions(keys, queries, layers, source, scale, target, position, gap, hook_name):
    mask = only_library_errors(lambda: al.AudioMask(keys=keys, queries=queries, layers=layers))
    if mask is not None and mask.layers is not None:
        # What the mask covers is exactly what was asked: no 2.5 turned into 2.
        assert [float(x) for x in mask.layers] == [float(x) for x in (layers if isinstance(layers, (list, tuple)) else [layers])]
    enrich = only_library_errors(lambda: al.Enrich(source, scale, target, position, gap))
    if enrich is not None:
        assert math.isfinite(float(enrich.scale))
    only_library_errors(lambda: al.HookIntervention(hook_name, lambda act, hook, batch: None))


@FUZZ
@given(labels=anything, tokens=anything, positions=anything, full_vocab=anything, per_step=anything, top_k=anything)
def test_lenses(labels, tokens, positions, full_vocab, per_step, top_k):
    only_library_errors(lambda: al.LogitLens(labels, label_tokens=tokens, positions=positions,
                                             full_vocab=full_vocab, variants_per_step=per_step))
    tok = only_library_errors(lambda: al.TokenLens(top_k=top_k))
    if tok is not None:
        assert isinstance(tok.top_k, int) and tok.top_k >= 1


rates = st.one_of(st.sampled_from([16000, 8000, 44100, 16000.0]), scalars)
clip_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.int32, np.int64, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=900),
)


@FUZZ
@given(wav=st.one_of(clip_arrays, anything), rate=rates, max_seconds=st.one_of(st.none(), scalars))
def test_prepare_waveform(wav, rate, max_seconds):
    out = only_library_errors(lambda: prepare_waveform(wav, rate, 16000, max_seconds=max_seconds, truncate=True))
    if out is None:
        return
    assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
    arr = np.asarray(wav)
    if rate == 16000 and arr.ndim == 1 and max_seconds is None:
        # Mono at the model's rate: float samples pass unchanged, int16 is divided by 32768.
        if arr.dtype == np.int16:
            assert np.array_equal(out, arr.astype(np.float32) / 32768)
        elif arr.dtype in (np.float32, np.float64):
            assert np.array_equal(out, arr.astype(np.float32))


@pytest.fixture(scope="module")
def prompt():
    return al.sakura_task("gender").prompt("P3")


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(audios=st.one_of(st.lists(clip_arrays, min_size=0, max_size=2), clip_arrays, anything),
       rate=rates, labels=st.one_of(st.none(), anything, st.just(["male"]), st.just(["female", "male"])),
       ids=st.one_of(st.none(), anything), truncate=anything)
def test_prepare(tiny_model, prompt, audios, rate, labels, ids, truncate):
    batch = only_library_errors(lambda: tiny_model.prepare(audios, rate, prompt, labels=labels, ids=ids,
                                                           truncate=truncate))
    if batch is not None:
        assert len(batch) == len(audios)
        if labels is not None:
            assert [prompt.labels[t] for t in batch.targets.tolist()] == list(labels)


def test_prepare_accepts_what_the_fuzzer_could_not_break(tiny_model, prompt):
    """The fuzz above must also reach the success path: a plain call works."""
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    batch = tiny_model.prepare([wav, torch.from_numpy(wav).to(torch.bfloat16)], [16000, 16000], prompt,
                               labels=["male", "female"])
    assert batch.targets.tolist() == [0, 1]


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(keys=anything, queries=anything, layers=anything, window=anything, top_k=anything, positions=anything)
def test_runs_with_arbitrary_sites(tiny_model, gender_batch, gender_task, keys, queries, layers, window, top_k,
                                   positions):
    lens = al.LogitLens(gender_task, positions=("last",))
    plain = lens.run(tiny_model, gender_batch).label_logits
    mask = only_library_errors(lambda: al.AudioMask(keys=keys, queries=queries, layers=layers))
    if mask is not None:
        res = only_library_errors(lambda: lens.run(tiny_model, gender_batch, [mask]))
        if res is not None and mask.layers is not None:
            first = min(mask.layers)  # residuals before the first masked block are untouched
            assert torch.equal(res.label_logits[:first], plain[:first])
    only_library_errors(lambda: al.attention_knockout(tiny_model, gender_batch, gender_task, window=window))
    only_library_errors(lambda: al.TokenLens(top_k=top_k).run(tiny_model, gender_batch, positions=positions))
