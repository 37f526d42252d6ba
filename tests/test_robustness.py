"""Misuse and faults get named errors or exact results: numeric edge cases, threads, audio in
odd forms, parameters, non-finite values, user hooks, tuned-lens files."""

import threading
import warnings

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens import metrics
from audiolens.errors import UndefinedCriticalLayer


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
    expected_many = lens.run_many(tiny_model, gender_batch, variants)
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
            # The shared-prefix path: one prefix pass, then a cached step per variant.
            many = lens.run_many(tiny_model, gender_batch, variants)
            mismatches.extend(f"many:{k}" for k in variants
                              if not torch.equal(many[k].label_logits, expected_many[k].label_logits))
        except Exception as exc:  # noqa: BLE001 - collected: a thread's exception would otherwise vanish
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
from audiolens.audio import load_audio, prepare_waveform
from audiolens.errors import AudioError, AudioNote, BatchError


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


# ----------------------------------------------------------------------------- parameters
from audiolens.errors import HookError, HookUnavailable, NonFiniteWarning, ParameterError


@pytest.mark.parametrize("make, match", [
    (lambda: al.AudioMask(layers=[2.5]), "whole layer numbers, got 2.5"),
    (lambda: al.AudioMask(layers=[True]), "whole layer numbers"),
    (lambda: al.AudioMask(layers=[]), "at least one layer"),
    (lambda: al.AudioMask(queries=1.5), "position name"),
    (lambda: al.Enrich(source_layer=1, scale=float("nan")), "finite"),
    (lambda: al.Enrich(source_layer=1, scale=0.1, position=None), "position name"),
    (lambda: al.HookIntervention("blocks.0.hook_resid_post", "not a function"), "callable"),
    (lambda: al.LogitLens(["a", "b"], variants_per_step=0), "variants_per_step"),
    (lambda: al.LogitLens(["a", "b"], positions=[1.5]), "positions"),
    (lambda: al.LogitLens(["a", "b"], label_tokens="spaced"), "label_tokens"),
    (lambda: al.TokenLens(top_k=0), "top_k"),
    (lambda: al.TokenLens(top_k="5"), "top_k"),
    (lambda: metrics.critical_layer(np.array([0.1, 0.9]), n_labels=2, alpha=float("nan")), "alpha"),
    (lambda: metrics.bootstrap_info_scores(np.ones((2, 3), bool), n_boot=2.5), "n_boot"),
    (lambda: metrics.wilson_interval(3, 4, z=float("inf")), "z"),
    (lambda: al.corrupt_clips([np.ones(100, np.float32)], snr_db=float("nan")), "snr_db"),
])
def test_parameters_are_checked_where_they_enter(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def test_parameters_checked_against_the_model(tiny_model, gender_batch, gender_task):
    with pytest.raises(ParameterError, match="window"):
        al.attention_knockout(tiny_model, gender_batch, gender_task, window=0)
    with pytest.raises(ParameterError, match="window"):
        al.attention_knockout(tiny_model, gender_batch, gender_task, window=tiny_model.n_layers + 1)
    with pytest.raises(ParameterError, match=r"outside 1\.\.4"):
        al.LogitLens(gender_task).run(tiny_model, gender_batch, [al.AudioMask(layers=[5])])
    with pytest.raises(ParameterError, match="top_k"):
        al.TokenLens(top_k=10**6).run(tiny_model, gender_batch, positions="last")
    with pytest.raises(ParameterError, match="TunedLens.train: steps"):
        al.TunedLens.train(tiny_model, [np.zeros(16000, np.float32)], steps=0)


def test_an_analysis_refuses_a_task_other_than_the_batchs(tiny_model, gender_batch):
    other = al.sakura_task("emotion")
    with pytest.raises(ParameterError, match="differ"):
        al.attention_knockout(tiny_model, gender_batch, other)
    with pytest.raises(ParameterError, match="differ"):
        al.direct_logit_attribution(tiny_model, gender_batch, other)
    with pytest.raises(ParameterError, match="differ"):
        al.patch(tiny_model, gender_batch, gender_batch, other)


# ----------------------------------------------------------------------------- non-finite
def _nan_at(layer_name, row=1):
    def fn(act, hook):
        act = act.clone()
        act[row] = float("nan")
        return act
    return (layer_name, fn)


def test_nan_in_the_residual_warns_once_naming_site_and_layer(tiny_model, gender_batch, gender_task):
    name = tiny_model.resid_name(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = al.LogitLens(gender_task).run(tiny_model, gender_batch, [_nan_at(name)])
    nonfinite = [str(w.message) for w in caught if issubclass(w.category, NonFiniteWarning)]
    assert len(nonfinite) == 1 and f"{name} (layer 2)" in nonfinite[0], nonfinite
    with pytest.warns(NonFiniteWarning, match="count as misses"):
        pred = res.predictions(layer=tiny_model.n_layers)
    assert pred[1] == -1  # never argmaxed to a label
    plain = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    assert np.array_equal(pred[[0, 2, 3]], plain.predictions()[[0, 2, 3]])  # other rows unchanged


def test_nan_in_a_tuned_lens_translator_is_reported(tiny_model, gender_batch, gender_task):
    tuned = al.TunedLens.identity(tiny_model, labels=gender_task)
    with torch.no_grad():
        tuned.translators.bias[1, 0] = float("inf")
    with pytest.warns(NonFiniteWarning, match="TunedLens's transform of layer 1"):
        tuned.run(tiny_model, gender_batch)


def test_missing_span_positions_are_not_reported(tiny_model, gender_batch, gender_task):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)  # rows with shorter audio hold NaN on purpose
        tok = al.TokenLens(top_k=2).run(tiny_model, gender_batch, positions="audio")
    assert (tok.positions < 0).any()  # there were missing positions to skip
    with pytest.warns(NonFiniteWarning, match=r"blocks.1.hook_resid_post \(layer 2\)"), \
            tiny_model.hooks(fwd_hooks=[_nan_at("blocks.1.hook_resid_post")]):
        al.TokenLens(top_k=2).run(tiny_model, gender_batch, positions="audio")


# ----------------------------------------------------------------------------- user hooks
@pytest.mark.parametrize("fn, match", [
    (lambda act, hook: act[:, :-1], r"returned shape .*expected a tensor of shape \(4, \d+, 64\)"),
    (lambda act, hook: act.double(), "dtype torch.float64.*expected .*dtype torch.float32"),
    (lambda act, hook: "oops", "returned str"),
    (lambda act, hook: act[999], "raised IndexError"),
])
def test_a_failing_user_hook_is_named(tiny_model, gender_batch, gender_task, fn, match):
    name = "blocks.1.hook_resid_post"
    with pytest.raises(HookError, match=f"on {name}.*" if "raised" in match else name) as info:
        al.LogitLens(gender_task).run(tiny_model, gender_batch, [(name, fn)])
    assert info.match(match)
    with pytest.raises(HookError, match=name):
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[(name, fn)])
    assert not any(hp.fwd_hooks for hp in tiny_model.hook_dict.values())


def test_in_place_edit_of_a_read_only_hook_point_is_refused(tiny_model, gender_batch):
    def scale_pattern(act, hook):
        act.mul_(0.5)  # in place, returns None

    with pytest.raises(HookUnavailable, match="read-only"):
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("blocks.0.attn.hook_pattern", scale_pattern)])

    def read(act, hook):  # reading is fine
        assert act.shape[1] > 0

    tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("blocks.0.attn.hook_pattern", read)])


# ----------------------------------------------------------------------------- tuned-lens files
def test_tuned_lens_files_are_checked(tiny_model, tmp_path):
    import json

    from safetensors.torch import save_file

    from audiolens.errors import TunedLensFileError

    good = al.TunedLens.identity(tiny_model).save(tmp_path / "good")
    al.TunedLens.load(good, tiny_model)  # round trip works
    L, d = tiny_model.n_layers, tiny_model.cfg.d_model

    def variant(name, meta=None, tensors=None):
        folder = tmp_path / name
        folder.mkdir()
        base = {"format": 1, "n_layers": L, "d_model": d}
        (folder / "tuned_lens.json").write_text(meta if isinstance(meta, str) else json.dumps({**base, **(meta or {})}))
        ts = {"weight": torch.zeros(L, d, d), "bias": torch.zeros(L, d)} if tensors is None else tensors
        save_file(ts, str(folder / "translators.safetensors"))
        return folder

    cases = [
        (variant("json", meta="{not json"), "not valid JSON"),
        (variant("format", meta={"format": 9}), "format 9"),
        (variant("layers", meta={"n_layers": "4"}), "n_layers must be a positive whole number"),
        (variant("names", tensors={"weight": torch.zeros(L, d, d), "b": torch.zeros(L, d)}), r"missing \['bias'\]"),
        (variant("shape", tensors={"weight": torch.zeros(L, d, d - 1), "bias": torch.zeros(L, d)}), "weight has shape"),
        (variant("nan", tensors={"weight": torch.full((L, d, d), float("nan")), "bias": torch.zeros(L, d)}), "NaN"),
        (variant("model", meta={"n_layers": L + 1},
                 tensors={"weight": torch.zeros(L + 1, d, d), "bias": torch.zeros(L + 1, d)}), "the model has"),
    ]
    for folder, match in cases:
        with pytest.raises(TunedLensFileError, match=match):
            al.TunedLens.load(folder, tiny_model)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "tuned_lens.json").write_text(json.dumps({"format": 1, "n_layers": L, "d_model": d}))
    (tmp_path / "junk" / "translators.safetensors").write_bytes(b"garbage")
    with pytest.raises(TunedLensFileError, match="cannot read tensors"):
        al.TunedLens.load(tmp_path / "junk", tiny_model)


def test_layers_given_to_the_model_and_results_are_whole_and_in_range(tiny_model, gender_batch, gender_task):
    for bad in (2.5, True, tiny_model.n_layers + 1, -1, "2"):
        with pytest.raises(ParameterError, match="layer"):
            tiny_model.resid_name(bad)
    assert tiny_model.resid_name(2.0) == tiny_model.resid_name(2)
    res = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    with pytest.raises(ParameterError, match="layer"):
        res.predictions(layer=2.5)
    with pytest.raises(ParameterError, match="subset"):
        res.subset([])


def test_a_failing_user_hook_is_named_under_nnsight_too(tiny_model, gender_batch, gender_task):
    def boom(act, hook):
        raise RuntimeError("boom")

    with pytest.raises(HookError, match="the hook .*boom on blocks.1.hook_resid_post raised RuntimeError: boom"):
        al.LogitLens(gender_task).run(tiny_model, gender_batch, [("blocks.1.hook_resid_post", boom)],
                                      backend="nnsight")


def test_misplaced_arguments_are_named(tiny_model, gender_batch, gender_task):
    from audiolens.errors import PositionError

    lens = al.LogitLens(gender_task)
    wav = np.full(16000, 0.1, dtype=np.float32)
    with pytest.raises(ParameterError, match=r"prompt must be a Prompt \(e.g. task.prompt"):
        tiny_model.prepare([wav], 16000, gender_task)
    with pytest.raises(ParameterError, match="wrap it"):
        lens.run(tiny_model, gender_batch, al.AudioMask())
    with pytest.raises(ParameterError, match=r"the order is run\(model, batch\)"):
        lens.run(gender_batch, tiny_model)
    with pytest.raises(ParameterError, match="variants must map names"):
        lens.run_many(tiny_model, gender_batch, [[]])
    with pytest.raises(ParameterError, match="unknown backend"):
        lens.run(tiny_model, gender_batch, backend="torch")
    with pytest.raises(PositionError, match="unknown span 'nope'"):
        al.attention_knockout(tiny_model, gender_batch, gender_task, keys="nope")
    with pytest.raises(PositionError, match="within 0.."):
        lens.run(tiny_model, gender_batch, [al.AudioMask(keys=[10**6])])
    with pytest.raises(KeyError):  # still the builtin it was
        al.TokenLens().run(tiny_model, gender_batch, positions="nope")
    with pytest.raises(ParameterError, match=r"label indices in 0..1"):
        metrics.info_scores(np.zeros((2, 2, 2)), np.array([0, 5]))


def test_in_memory_samples_take_lists_and_half_precision(gender_task):
    from audiolens.data.dataset import Sample

    pcm = [0, 16384, -16384] * 3000
    s = Sample("a", "male", audio=pcm, sampling_rate=16000)
    assert s.info().frames == 9000
    assert np.array_equal(s.load(16000), np.array(pcm, dtype=np.float32) / 32768)
    h = Sample("b", "male", audio=torch.full((9000,), 0.25, dtype=torch.bfloat16), sampling_rate=16000)
    assert h.info().frames == 9000 and float(h.load(16000).max()) == 0.25
