"""Bad input never gives a silently wrong answer."""

import copy
import dataclasses
import os

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens.audio import AudioNote


def prep(model, clips, task, **kw):
    return model.prepare(clips, kw.pop("sr", 16000), task.prompt("P3"), **kw)


def test_other_sample_rate_is_resampled(tiny_model, clips, gender_task):
    from scipy.signal import resample_poly

    at_44k = resample_poly(clips[0], 441, 160).astype(np.float32)
    with pytest.warns(AudioNote, match="from 44100 Hz to 16000 Hz"):
        b44 = prep(tiny_model, [at_44k], gender_task, sr=44100)
    b16 = prep(tiny_model, [clips[0]], gender_task)
    assert torch.equal(b44.inputs["input_ids"], b16.inputs["input_ids"])
    # Up- then down-sampling a band-limited clip gives back nearly the same features.
    diff = (b44.inputs["input_features"] - b16.inputs["input_features"]).abs().mean()
    assert diff < 0.05


def test_stereo_is_mixed_down(tiny_model, clips, gender_task):
    stereo = np.stack([clips[0], clips[0] * 0.5], axis=1)
    with pytest.warns(AudioNote, match="2 channels"):
        b = prep(tiny_model, [stereo], gender_task)
    mono = prep(tiny_model, [clips[0] * 0.75], gender_task)
    torch.testing.assert_close(b.inputs["input_features"], mono.inputs["input_features"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf, 0.2] * 100, dtype=np.float32), "infinite"),
    ],
)
def test_broken_clips_raise_naming_the_clip(tiny_model, clips, gender_task, bad, message):
    with pytest.raises(al.AudioError, match=rf"clip 'bad_one'.*{message}"):
        prep(tiny_model, [clips[0], bad], gender_task, ids=["fine", "bad_one"])


def test_too_long_clip_raises_unless_truncated(tiny_model, gender_task):
    long = np.full(16000 * 4, 0.1, dtype=np.float32)  # the tiny processor's window is 3 s
    with pytest.raises(al.AudioError, match=r"longer than the model accepts \(3 s\)"):
        prep(tiny_model, [long], gender_task)
    with pytest.warns(AudioNote, match="truncating"):
        b = prep(tiny_model, [long], gender_task, truncate=True)
    assert int(b.spans["audio"].sum()) == 75


def test_label_outside_the_task_set(tiny_model, clips, gender_task):
    with pytest.raises(ValueError, match=r"\['robot'\] are not in the label set"):
        prep(tiny_model, clips[:2], gender_task, labels=["male", "robot"])
    with pytest.raises(ValueError, match="2 labels for 1 clips"):
        prep(tiny_model, clips[:1], gender_task, labels=["male", "female"])


def test_lens_refuses_batch_of_another_task(tiny_model, gender_batch):
    with pytest.raises(ValueError, match="differ"):
        al.LogitLens(al.sakura_task("language")).run(tiny_model, gender_batch)


def test_processor_without_chat_template(tiny_model, clips, gender_task):
    processor = copy.deepcopy(tiny_model.processor)
    processor.chat_template = None
    processor.tokenizer.chat_template = None
    model = al.HookedAudioLM.from_hf(tiny_model.hf_model, processor)
    with pytest.raises(ValueError, match="no chat template"):
        prep(model, clips[:1], gender_task)


def test_label_tokens_leading_space_and_bare(tiny_model):
    tok = tiny_model.tokenizer
    spaced = al.label_token_ids(tok, ["fear", "female"])
    assert tok.convert_ids_to_tokens(spaced) == ["Ġfear", "Ġfemale"]
    with pytest.raises(al.LabelTokenError, match=r"\['fear', 'female'\] all start with token 'f'"):
        al.label_token_ids(tok, ["fear", "female"], mode="bare")
    bare = al.label_token_ids(tok, ["male", "pig"], mode="bare")
    assert tok.convert_ids_to_tokens(bare) == ["male", "pig"]


def test_lens_with_bare_labels_runs(tiny_model, gender_batch, gender_task):
    res = al.LogitLens(gender_task, label_tokens="bare").run(tiny_model, gender_batch)
    tok = tiny_model.tokenizer
    assert res.label_token_ids == (tok("male")["input_ids"][0], tok("female")["input_ids"][0])


def test_architecture_errors_say_how_to_fix(tiny_model):
    bad = dataclasses.replace(al.ARCHITECTURES["qwen2_audio"], layers="model.decoder.layers")
    with pytest.raises(al.ArchitectureError, match=r"no module 'model.decoder.layers' \(layers\).*architecture="):
        al.HookedAudioLM.from_hf(tiny_model.hf_model, tiny_model.processor, architecture=bad)
    with pytest.raises(al.ArchitectureError, match="no architecture registered for model_type 'not_a_model'"):
        from audiolens.architectures import architecture_for

        architecture_for("not_a_model")


def test_prompt_checks():
    with pytest.raises(ValueError, match="does not occur"):
        al.Prompt(prefix="The speaker's gender is", attribute_word="emotion")
    with pytest.raises(ValueError, match="unknown prompt format"):
        al.sakura_task("gender").prompt("P4")
    with pytest.raises(ValueError, match="unknown attribute"):
        al.sakura_task("height")


# --------------------------------------------------------------------------------------------
# One test per bad input that used to give a silently wrong answer or an unclear error.


def wav_bytes(path, data, rate, subtype):
    """Write ``data`` with soundfile and return the raw sample bytes of the WAV (stdlib wave)."""
    import wave

    import soundfile as sf

    sf.write(str(path), data, rate, subtype=subtype, format="WAV")
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def test_integer_pcm_is_scaled_like_soundfile(tmp_path, tiny_model, clips, gender_task):
    import soundfile as sf

    from audiolens.audio import to_float

    clip = clips[0] * 0.9
    # uint8 is offset binary: 128 is silence. Read the raw bytes with the stdlib and compare with
    # libsndfile's own float conversion of the same file.
    raw = np.frombuffer(wav_bytes(tmp_path / "u8.wav", clip, 16000, "PCM_U8"), dtype=np.uint8)
    want, _ = sf.read(str(tmp_path / "u8.wav"), dtype="float32")
    np.testing.assert_array_equal(to_float(raw), want)
    for subtype, dtype in (("PCM_16", np.int16), ("PCM_32", np.int32)):
        raw = np.frombuffer(wav_bytes(tmp_path / f"{subtype}.wav", clip, 16000, subtype), dtype=dtype)
        want, _ = sf.read(str(tmp_path / f"{subtype}.wav"), dtype="float64")
        np.testing.assert_allclose(to_float(raw), want, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(to_float(np.array([-128, 0, 64], dtype=np.int8)), [-1.0, 0.0, 0.5])
    # End to end: the uint8 clip gives exactly the features of its float value, not of x / 255.
    u8 = np.clip(np.round(clip * 128 + 128), 0, 255).astype(np.uint8)
    as_float = (u8.astype(np.float32) - 128) / 128
    b8, bf = prep(tiny_model, [u8], gender_task), prep(tiny_model, [as_float], gender_task)
    torch.testing.assert_close(b8.inputs["input_features"], bf.inputs["input_features"], rtol=0, atol=0)
    old = prep(tiny_model, [u8 / 255.0], gender_task)  # the old conversion kept the 0.5 offset
    assert not torch.allclose(old.inputs["input_features"], bf.inputs["input_features"], atol=1e-2)


def test_int16_scale_floats_are_refused(tiny_model, clips, gender_task):
    scaled = clips[0] * 32767.0
    with pytest.raises(al.AudioError, match=r"clip '0': float samples reach .* far above full scale.*divide by 32768"):
        prep(tiny_model, [scaled], gender_task)
    with pytest.raises(al.AudioError, match=r"2\*\*23 or 2\*\*31"):
        al.prepare_waveform(clips[0] * 2.0**30, 16000, 16000)
    # A quiet 16-bit clip cast to float stays under the peak limit but is all whole numbers.
    quiet = np.round(clips[0] * 30)
    assert 1 < np.abs(quiet).max() < 16
    with pytest.raises(al.AudioError, match="every sample is a whole number.*divide by 32768"):
        al.prepare_waveform(quiet, 16000, 16000)
    # Overshoot and noise mixed in at a low SNR are loud clips, not scaling mistakes.
    loud = clips[0] / np.abs(clips[0]).max() * 1.5
    assert np.abs(al.prepare_waveform(loud, 16000, 16000)).max() == pytest.approx(1.5)
    noisy = al.corrupt_clips(clips[:1], "noise", snr_db=-20)[0]
    assert 2 < np.abs(noisy).max() < 16
    np.testing.assert_array_equal(al.prepare_waveform(noisy, 16000, 16000), noisy)


@pytest.mark.parametrize("labels", [("male", ""), ("male", "  "), ("male", " female"), ("male", 3)])
def test_blank_or_padded_labels_are_refused(tiny_model, labels):
    with pytest.raises(al.LabelTokenError, match="label"):
        al.Task(name="x", labels=labels, question="Q?", prefix="The speaker's x is", attribute_word="x")
    with pytest.raises(al.LabelTokenError, match="label"):
        al.label_token_ids(tiny_model.tokenizer, labels)
    with pytest.raises(al.LabelTokenError, match="label"):
        al.Prompt(prefix="The speaker's x is", attribute_word="x", labels=labels)


def test_lens_with_a_blank_label_is_refused(tiny_model, gender_batch):
    batch = dataclasses.replace(gender_batch, label_set=None)
    with pytest.raises(al.LabelTokenError, match="empty or blank"):
        al.LogitLens(["male", ""]).run(tiny_model, batch)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"source_layer": 1, "scale": float("nan")}, ValueError, "scale must be a finite number"),
        ({"source_layer": 1, "scale": float("inf")}, ValueError, "scale must be a finite number"),
        ({"source_layer": 1, "scale": "0.5"}, TypeError, "scale must be a finite number"),
        ({"source_layer": 1.7, "scale": 0.5}, ValueError, "source_layer must be whole"),
        ({"source_layer": [1, 2.5], "scale": 0.5}, ValueError, "source_layer must be whole"),
        ({"source_layer": 1, "scale": 0.5, "target_layer": 3.2}, ValueError, "target_layer must be whole"),
        ({"source_layer": 1, "scale": 0.5, "gap": 0}, ValueError, "gap must be one positive"),
        ({"source_layer": True, "scale": 0.5}, TypeError, "source_layer must be whole"),
    ],
)
def test_enrich_refuses_bad_arguments_when_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        al.Enrich(**kwargs)


def test_enrich_accepts_integral_layers(tiny_model, gender_batch, gender_task):
    lens = al.LogitLens(gender_task)
    as_int = lens.run(tiny_model, gender_batch, [al.Enrich(1, 0.5, target_layer=3)])
    as_float = lens.run(tiny_model, gender_batch, [al.Enrich(1.0, np.float32(0.5), target_layer=np.int64(3))])
    torch.testing.assert_close(as_int.label_logits, as_float.label_logits, rtol=0, atol=0)


def test_channel_layouts(tiny_model, clips, gender_task):
    n = len(clips[1])
    channels = np.stack([clips[1] * (k + 1) / 6 for k in range(6)])  # (6, samples)
    want = channels.mean(axis=0)
    with pytest.warns(AudioNote, match="mixing 6 channels"):
        first = al.prepare_waveform(channels, 16000, 16000)
    with pytest.warns(AudioNote, match="mixing 6 channels"):
        last = al.prepare_waveform(channels.T, 16000, 16000)
    np.testing.assert_allclose(first, want, rtol=1e-6)
    np.testing.assert_array_equal(first, last)
    assert first.shape == (n,)
    stereo = np.stack([clips[1], clips[1] * 0.5])
    with pytest.warns(AudioNote):
        b1 = prep(tiny_model, [stereo], gender_task)
    with pytest.warns(AudioNote):
        b2 = prep(tiny_model, [stereo.T], gender_task)
    torch.testing.assert_close(b1.inputs["input_features"], b2.inputs["input_features"], rtol=0, atol=0)
    with pytest.raises(al.AudioError, match="100 channels .* at most 64"):
        al.prepare_waveform(np.zeros((100, 16000)), 16000, 16000)
    with pytest.raises(al.AudioError, match="square"):
        al.prepare_waveform(np.zeros((512, 512)), 16000, 16000)
    with pytest.raises(al.AudioError, match="1-D or 2-D"):
        al.prepare_waveform(np.zeros((2, 2, 16000)), 16000, 16000)


def test_clip_shorter_than_one_window(tiny_model, gender_task):
    from audiolens.audio import min_samples_at

    assert min_samples_at(16000) == 400
    short = np.full(399, 0.1, dtype=np.float32)
    with pytest.raises(al.AudioError, match=r"clip '0': 399 samples at 16000 Hz .*shorter than one analysis window \(400"):
        prep(tiny_model, [short], gender_task)
    batch = prep(tiny_model, [np.full(400, 0.1, dtype=np.float32)], gender_task)
    assert int(batch.spans["audio"].sum()) >= 1  # the shortest accepted clip reaches the encoder
    with pytest.warns(AudioNote):
        assert al.prepare_waveform(np.full(200, 0.1), 8000, 16000).shape == (400,)
    assert al.prepare_waveform(short, 16000, 16000, min_samples=100).shape == (399,)
    with pytest.raises(al.AudioError, match="shorter"):
        al.prepare_waveform(short, 16000, 16000, min_samples=1000)


def test_sampling_rate_types(tiny_model, clips, gender_task):
    from audiolens.audio import check_rate

    for ok in (16000, np.int64(16000), np.int32(16000), 16000.0, np.float64(16000), np.array(16000),
               torch.tensor(16000)):
        assert check_rate(ok) == 16000 and type(check_rate(ok)) is int
    for bad, message in ((16000.5, "whole number"), (float("nan"), "whole number"), (0, "positive"),
                         (-8000, "positive"), (True, "number of Hz"), ("16000", "number of Hz"),
                         (None, "number of Hz"), ([16000], "number of Hz")):
        with pytest.raises(al.AudioError, match=message):
            check_rate(bad)
    want = al.prepare_waveform(clips[0], 16000, 16000)
    np.testing.assert_array_equal(al.prepare_waveform(clips[0], np.int64(16000), 16000.0), want)
    b = prep(tiny_model, clips[:1], gender_task, sr=np.int64(16000))
    ref = prep(tiny_model, clips[:1], gender_task)
    torch.testing.assert_close(b.inputs["input_features"], ref.inputs["input_features"], rtol=0, atol=0)
    s = al.data.Sample("s", "male", audio=clips[0], sampling_rate=np.int64(16000))
    np.testing.assert_array_equal(s.load(16000), want)
    with pytest.raises(al.AudioError, match="whole number"):
        al.data.Sample("t", "male", audio=clips[0], sampling_rate=16000.5).load(16000)


def test_reproduce_with_a_missing_data_folder(tmp_path, capsys):
    from audiolens.cli import main

    assert main(["reproduce", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"audiolens reproduce: error: --data {tmp_path / 'nope'}: no such folder; give a SAKURA checkout"
    (tmp_path / "empty").mkdir()
    assert main(["reproduce", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no SAKURA track under" in capsys.readouterr().err
    with pytest.raises(al.data.DataError, match="does not exist"):
        al.data.load_sakura(tmp_path / "nope", "gender")
    with pytest.raises(al.data.DataError, match="does not exist"):
        al.data.load_folder(tmp_path / "nope", "labels.csv", al.sakura_task("gender"))


def sakura_track(root, rows, rate=16000, channels=1, seconds=0.5):
    """A SAKURA Gender track under ``root`` with a tone for every (file, label) row whose file
    name ends in .wav and does not exist yet."""
    import soundfile as sf

    track = root / "data" / "Gender"
    (track / "audio").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    for name, _ in rows:
        path = track / "audio" / name
        if name.endswith(".wav") and "/" not in name and not path.exists():
            sf.write(str(path), np.stack([tone] * channels, axis=1), rate)
    lines = ["file,attribute_label"] + [f"{f},{lab}" for f, lab in rows]
    (track / "metadata.csv").write_text("\n".join(lines) + "\n")
    return track


def test_unreadable_clips_are_found_when_the_data_set_is_built(tmp_path):
    from audiolens.data import DataError, DataWarning, from_hf_dataset, load_sakura

    track = sakura_track(tmp_path, [("a.wav", "male"), ("b.wav", "female"), ("text.wav", "male"),
                                    ("blip.wav", "female"), ("c.wav", "female")])
    (track / "audio" / "text.wav").write_text("not audio at all\n")
    import soundfile as sf

    sf.write(str(track / "audio" / "blip.wav"), np.zeros(100, dtype=np.float32), 16000)  # 6 ms
    with pytest.raises(DataError) as err:
        load_sakura(tmp_path, "gender")
    msg = str(err.value)
    assert "2 clip(s) that do not decode or are too short" in msg
    assert "row 4: " in msg and "text.wav: cannot read audio" in msg
    assert "row 5: " in msg and "blip.wav: 6.2 ms is shorter than one analysis window" in msg
    with pytest.warns(DataWarning, match=r"skipped 2 clip\(s\) that do not decode") as rec:
        ds = load_sakura(tmp_path, "gender", on_error="skip")
    assert "text.wav" in str(rec[0].message) and "blip.wav" in str(rec[0].message)
    assert [s.id for s in ds] == ["a.wav", "b.wav", "c.wav"]
    with pytest.warns(DataWarning):
        assert len(load_sakura(tmp_path, "gender", on_unreadable="skip")) == 3
    # In-memory rows: undecodable bytes and NaN arrays are caught at build time too.
    rows = [
        {"file": "ok", "audio": {"array": np.full(1600, 0.1), "sampling_rate": 16000}, "attribute_label": "male"},
        {"file": "junk", "audio": {"bytes": b"junk", "path": None}, "attribute_label": "male"},
        {"file": "nan", "audio": {"array": np.full(1600, np.nan), "sampling_rate": 16000}, "attribute_label": "female"},
    ]
    with pytest.raises(DataError, match=r"(?s)2 clip\(s\).*junk.*cannot decode.*nan: the clip contains NaN"):
        from_hf_dataset(rows, al.sakura_task("gender"))
    with pytest.warns(DataWarning, match="junk"):
        assert [s.id for s in from_hf_dataset(rows, al.sakura_task("gender"), on_error="skip")] == ["ok"]


def test_metadata_paths_stay_in_the_data_folder(tmp_path):
    import soundfile as sf

    from audiolens.data import DataError, leaves_folder, load_folder, load_sakura

    sf.write(str(tmp_path / "secret.wav"), np.full(8000, 0.1, dtype=np.float32), 16000)
    # Each of these reaches tmp_path/secret.wav from the track's audio/ folder.
    for i, bad in enumerate(("../../../../secret.wav", str(tmp_path / "secret.wav"),
                             "sub/../../../../../secret.wav")):
        root = tmp_path / f"set{i}"
        track = sakura_track(root, [("a.wav", "male"), (bad, "female")])
        assert os.path.normpath(track / "audio" / bad) == str(tmp_path / "secret.wav")
        for on_error in ("raise", "skip"):
            with pytest.raises(DataError, match=r"1 path\(s\) leave the data folder \(refused, never read\)"):
                load_sakura(root, "gender", on_error=on_error)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "labels.csv").write_text("file,label\n../secret.wav,male\n")
    with pytest.raises(DataError, match="leave the data folder"):
        load_folder(folder, "labels.csv", al.sakura_task("gender"))
    # Judged on names, so a link inside the folder is still followed.
    (folder / "inside.wav").symlink_to(tmp_path / "secret.wav")
    (folder / "sub").mkdir()
    (folder / "labels.csv").write_text("file,label\ninside.wav,male\n")
    assert len(load_folder(folder, "labels.csv", al.sakura_task("gender"))) == 1
    # One file under two spellings would be one clip counted twice: refused by name.
    (folder / "labels.csv").write_text("file,label\ninside.wav,male\n./sub/../inside.wav,female\n")
    with pytest.raises(DataError, match="one file under several sample ids"):
        load_folder(folder, "labels.csv", al.sakura_task("gender"))
    assert leaves_folder("a/../../b", ".") and not leaves_folder("a/./b", "a")


def test_conversion_notes_once_per_data_set(tmp_path, tiny_model):
    import warnings

    from audiolens.data import load_sakura

    sakura_track(tmp_path, [(f"c{i}.wav", "male" if i % 2 else "female") for i in range(6)],
                 rate=8000, channels=2)
    ds = load_sakura(tmp_path, "gender")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe, test = ds.split(2, seed=0)
        for s in [*probe, *test, *ds]:
            s.load(16000)
    notes = sorted(str(w.message) for w in caught if issubclass(w.category, AudioNote))
    assert len(notes) == 2, notes
    assert notes[0].endswith("mixing 6 of 6 clips with 2 channels down to mono (noted once per data set)")
    assert notes[1].endswith("resampling 6 of 6 clips from 8000 Hz to 16000 Hz (noted once per data set)")
    # A study over another copy of the data set notes once too, not per clip and prompt.
    ds = load_sakura(tmp_path, "gender")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        al.Study(tiny_model, [ds], prompts=["P1", "P3"], out=tmp_path / "out", model_name="tiny",
                 enrich=None, progress=False, batch_size=4).run()
    notes = [str(w.message) for w in caught if issubclass(w.category, AudioNote)]
    assert len(notes) == 2 and all("6 of 6 clips" in n for n in notes), notes
