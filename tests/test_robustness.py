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


# ----------------------------------------------------------------------------- audio forms
from audiolens.audio import load_audio, prepare_waveform  # noqa: E402
from audiolens.errors import AudioError, AudioNote, BatchError  # noqa: E402


def test_integer_pcm_in_lists_and_int64_arrays_is_scaled_by_its_range():
    pcm = np.array([0, 16384, -32768, 8192] * 200, dtype=np.int16)
    reference = pcm.astype(np.float32) / 32768  # what int16 PCM means
    for form in (pcm.tolist(), pcm.astype(np.int64), torch.from_numpy(pcm.astype(np.int64))):
        assert np.array_equal(prepare_waveform(form, 16000, 16000), reference)
    wide = np.array([0, 2**30, -(2**31)] * 300, dtype=np.int64)  # only 32-bit PCM reaches 2**30
    assert np.array_equal(prepare_waveform(wide, 16000, 16000), wide.astype(np.float64) / 2**31)
    with pytest.raises(AudioError, match="ambiguous"):  # 24-bit or quiet 32-bit?
        prepare_waveform(np.array([0, 2**20] * 400, dtype=np.int64), 16000, 16000)
    with pytest.raises(AudioError, match="beyond every PCM format"):
        prepare_waveform([0, 2**40] * 400, 16000, 16000)


def test_half_precision_tensors_are_widened_exactly():
    x = torch.linspace(-0.5, 0.5, 16000)
    for dtype in (torch.bfloat16, torch.float16):
        got = prepare_waveform(x.to(dtype), 16000, 16000)
        assert np.array_equal(got, x.to(dtype).float().numpy())


def test_truncated_file_is_named_with_frames_declared_and_read(tmp_path):
    import soundfile as sf

    path = tmp_path / "cut.wav"
    sf.write(path, np.full(16000, 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:16000])  # half the samples are gone
    with pytest.raises(AudioError, match=r"declares 16000 frames but 79\d\d could be read"):
        load_audio(path, 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(range(200)))
    with pytest.raises(AudioError, match="junk.wav: cannot read audio"):
        load_audio(tmp_path / "junk.wav", 16000)


def test_one_file_under_two_spellings_is_refused(tmp_path, gender_task, monkeypatch):
    import soundfile as sf

    from audiolens.data.dataset import AttributeDataset, DataError, Sample

    sf.write(tmp_path / "a.wav", np.full(16000, 0.1, dtype=np.float32), 16000)
    monkeypatch.chdir(tmp_path)
    samples = [Sample("x", "male", path=tmp_path / "a.wav"), Sample("y", "male", path="./sub/../a.wav")]
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="one file under several sample ids"):
        AttributeDataset(gender_task, samples, name="toy")


def test_wrong_containers_and_rates_say_what_was_expected(tiny_model, gender_task):
    wav = np.full(16000, 0.1, dtype=np.float32)
    prompt = gender_task.prompt("P3")
    with pytest.raises(AudioError, match=r"expected a list of clips.*wrap a single clip in a list"):
        tiny_model.prepare(wav, 16000, prompt)
    with pytest.raises(AudioError, match="sampling_rate must be a number of Hz"):
        tiny_model.prepare([wav], "16000", prompt)
    with pytest.raises(AudioError, match="expected the samples as a NumPy array"):
        tiny_model.prepare(["a.wav"], 16000, prompt)


def test_zero_row_batch_is_a_named_error(gender_batch):
    with pytest.raises(BatchError, match="selects no rows"):
        gender_batch.subset([])


def test_conversions_are_noted_once_per_kind_and_batch_at_the_callers_line(tiny_model, gender_task):
    rng = np.random.default_rng(0)
    stereo = [rng.normal(0, 0.1, (44100, 2)).astype(np.float32) for _ in range(6)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_model.prepare(stereo, 44100, gender_task.prompt("P3"))
    notes = [w for w in caught if issubclass(w.category, AudioNote)]
    assert sorted(str(w.message) for w in notes) == [
        "mixing 6 of 6 clips with 2 channels down to mono", "resampling 6 of 6 clips from 44100 Hz to 16000 Hz"]
    assert {w.filename for w in notes} == {__file__}  # the user's line, not the library's
