"""Loaders and data sets, on the committed fixtures (no espeak-ng needed)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolens.audio import AudioError, AudioNote
from audiolens.data import (
    AttributeDataset,
    DataError,
    DataWarning,
    Sample,
    find_track_dir,
    from_hf_dataset,
    load_folder,
    load_sakura,
    normalize_label,
)
from audiolens.tasks import sakura_task

FIX = Path(__file__).parent / "fixtures"
SAKURA = FIX / "sakura"
GENDER, LANGUAGE = sakura_task("gender"), sakura_task("language")


def toy(labels: list[str], task=GENDER) -> AttributeDataset:
    z = np.full(160, 0.1, dtype=np.float32)
    return AttributeDataset(
        task,
        [Sample(f"s{i}", lab, audio=z, sampling_rate=16000) for i, lab in enumerate(labels)],
        "toy",
    )


# ------------------------------------------------------------------------- label normalisation


@pytest.mark.parametrize(
    "raw, task, want",
    [
        (" Female", GENDER, "female"),
        ("MALE ", GENDER, "male"),
        ("english", LANGUAGE, "English"),
        ("  chinese\t", LANGUAGE, "Chinese"),
        ("robot", GENDER, None),
        ("", GENDER, None),
        (None, GENDER, None),
        (float("nan"), GENDER, None),
    ],
)
def test_normalize_label(raw, task, want):
    assert normalize_label(raw, task) == want


def test_normalize_label_aliases():
    assert normalize_label(" Mandarin", LANGUAGE, {"mandarin": "Chinese"}) == "Chinese"
    with pytest.raises(ValueError, match="Klingon"):
        normalize_label("x", LANGUAGE, {"x": "Klingon"})


# ------------------------------------------------------------------------------------ SAKURA


@pytest.mark.parametrize("root", [SAKURA, SAKURA / "data", SAKURA / "data" / "Gender"])
def test_load_sakura_accepts_root_data_or_track(root):
    ds = load_sakura(root, "gender")
    assert len(ds) == 4
    assert ds.counts() == {"male": 2, "female": 2}
    # Metadata spells them " Female", "MALE ", "female", "Male".
    assert ds.labels == ["female", "male", "female", "male"]
    assert [s.id for s in ds] == ["f_hello.wav", "m_thanks.wav", "f_morning.wav", "m_later.wav"]
    assert ds[0].path == SAKURA / "data" / "Gender" / "audio" / "f_hello.wav"
    assert ds.targets.tolist() == [1, 0, 1, 0]


def test_load_sakura_language_labels_and_audio():
    ds = load_sakura(SAKURA, "Language")
    assert ds.labels == ["English", "German", "French", "Chinese", "Japanese", "Korean"]
    for s in ds:
        info = sf.info(str(s.path))
        wav = s.load(16000)
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert wav.dtype == np.float32 and wav.shape == (info.frames,)
        assert 0.05 < np.abs(wav).max() <= 1.0  # real speech, not silence


def test_load_sakura_wrong_or_absent_track(tmp_path):
    with pytest.raises(DataError, match="Language track, not Gender"):
        load_sakura(SAKURA / "data" / "Language", "gender")
    with pytest.raises(DataError, match="looked for") as err:
        find_track_dir(tmp_path, "emotion")
    assert str(tmp_path / "data" / "Emotion" / "metadata.csv") in str(err.value)
    with pytest.raises(ValueError, match="unknown attribute"):
        load_sakura(SAKURA, "colour")


def test_load_sakura_lists_every_problem():
    with pytest.raises(DataError) as err:
        load_sakura(FIX / "sakura_broken", "gender")
    msg = str(err.value)
    assert "2 missing audio file(s)" in msg
    assert "gone_1.wav" in msg and "gone_2.wav" in msg and "row 3" in msg
    assert "1 label(s) not in ['male', 'female']" in msg and "'robot'" in msg and "robot.wav" in msg
    assert "on_missing='skip'" in msg


def test_load_sakura_skip_warns_with_count_and_names():
    with pytest.warns(DataWarning) as rec:
        ds = load_sakura(FIX / "sakura_broken", "gender", on_missing="skip", on_unknown="skip")
    msg = "\n".join(str(r.message) for r in rec)
    assert "2 missing" in msg and "gone_1.wav" in msg and "gone_2.wav" in msg and "robot" in msg
    assert [s.id for s in ds] == ["ok.wav"] and ds.labels == ["female"]


def test_load_sakura_skip_one_kind_still_raises_the_other():
    with pytest.warns(DataWarning, match="gone_1.wav"), pytest.raises(DataError) as err:
        load_sakura(FIX / "sakura_broken", "gender", on_missing="skip")
    assert "robot" in str(err.value) and "gone_1" not in str(err.value)
    with pytest.raises(ValueError, match="on_missing"):
        load_sakura(SAKURA, "gender", on_missing="ignore")


def test_load_sakura_missing_column(tmp_path):
    track = tmp_path / "Gender"
    (track / "audio").mkdir(parents=True)
    (track / "metadata.csv").write_text("file_name,label\na.wav,male\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['file', 'attribute_label'\]"):
        load_sakura(track, "gender")


# ------------------------------------------------------------------------------------ folder


def load_odd(**kw) -> AttributeDataset:
    with pytest.warns(DataWarning) as rec:
        ds = load_folder(FIX / "odd", "labels.csv", GENDER, on_error="skip", **kw)
    msg = str(rec[0].message)
    assert "missing_a.wav" in msg and "missing_b.wav" in msg and "short.wav" in msg
    assert "1 clip(s) that do not decode" in msg and "empty.wav: the clip is empty" in msg
    return ds


def test_load_folder_normalises_and_skips():
    ds = load_odd()
    assert [(s.id, s.label) for s in ds] == [("stereo_44k.wav", "female")]


def test_load_folder_raise_names_all_missing():
    with pytest.raises(DataError) as err:
        load_folder(FIX / "odd", FIX / "odd" / "labels.csv", GENDER)
    msg = str(err.value)
    assert "missing_a.wav" in msg and "missing_b.wav" in msg and "'robot'" in msg


def test_stereo_44k_clip_comes_back_mono_16k():
    clip = load_odd()[0]
    assert sf.info(str(clip.path)).channels == 2 and sf.info(str(clip.path)).samplerate == 44100
    with pytest.warns(AudioNote) as notes:
        wav = clip.load(16000)
    assert wav.shape == (4000,) and wav.dtype == np.float32  # 11025 frames at 44.1 kHz = 0.25 s
    text = " ".join(str(n.message) for n in notes)
    assert "mixing 1 of 1 clips with 2 channels down to mono" in text
    assert "resampling 1 of 1 clips from 44100 Hz to 16000 Hz" in text
    # Channels were L and L/2, so the mixdown is 0.75 L resampled.
    left, _ = sf.read(str(clip.path), dtype="float32")
    from scipy.signal import resample_poly

    want = resample_poly(0.75 * left[:, 0], 160, 441)
    np.testing.assert_allclose(wav, want, atol=2e-4)
    with pytest.raises(AudioError, match="stereo_44k.wav.*longer"), warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioNote)
        clip.load(16000, max_seconds=0.1)


def test_empty_clip_is_refused_when_the_data_set_is_built():
    with pytest.raises(DataError, match=r"row 3: .*empty\.wav: the clip is empty"):
        load_folder(FIX / "odd", "labels.csv", GENDER, on_missing="skip", on_unknown="skip")
    with pytest.raises(AudioError, match=r"empty\.wav.*empty"):
        Sample("e", "male", path=FIX / "odd" / "empty.wav").load(16000)


def test_load_folder_column_errors(tmp_path):
    with pytest.raises(DataError, match="label_col"):
        load_folder(FIX / "odd", "labels.csv", GENDER, label_column="label_col")
    with pytest.raises(DataError, match="not found"):
        load_folder(tmp_path, "nope.csv", GENDER)


# ------------------------------------------------------------------------ samples and datasets


def test_sample_checks_and_in_memory_errors_name_the_sample():
    with pytest.raises(ValueError, match="exactly one"):
        Sample("x", "male")
    with pytest.raises(ValueError, match="sampling_rate"):
        Sample("x", "male", audio=np.zeros(3))
    bad = Sample("clip-7", "male", audio=np.array([0.1, np.nan, 0.2]), sampling_rate=16000)
    with pytest.raises(AudioError, match="clip-7.*NaN"):
        bad.load(16000)
    long = Sample("clip-8", "male", audio=np.full(32000, 0.1), sampling_rate=16000)
    with pytest.warns(AudioNote, match="truncating"):
        assert long.load(16000, max_seconds=1.0, truncate=True).shape == (16000,)


def test_dataset_validates_labels_and_ids():
    with pytest.raises(DataError, match=r"\['Male'\]"):
        toy(["male", "Male"])
    z = np.zeros(4)
    with pytest.raises(DataError, match="duplicate sample ids"):
        AttributeDataset(GENDER, [Sample("a", "male", audio=z, sampling_rate=8000)] * 2, "dup")


def test_dataset_indexing():
    ds = toy(["male", "female", "female", "male", "female"])
    assert isinstance(ds[1], Sample) and ds[1].id == "s1" and ds[-1].id == "s4"
    part = ds[1:4]
    assert isinstance(part, AttributeDataset) and [s.id for s in part] == ["s1", "s2", "s3"]
    assert part.task is GENDER and part.name == "toy"
    assert [s.id for s in ds] == [f"s{i}" for i in range(5)]
    assert ds.targets.dtype == np.int64 and ds.targets.tolist() == [0, 1, 1, 0, 1]
    assert [s.id for s in ds.subset([4, 0])] == ["s4", "s0"]
    mask = ds.targets == 1
    assert [s.id for s in ds.subset(mask)] == ["s1", "s2", "s4"]
    assert ds.counts() == {"male": 2, "female": 3}
    assert toy(["male", "male"]).counts() == {"male": 2, "female": 0}


def test_split_is_deterministic_disjoint_and_stratified():
    labels = ["male"] * 300 + ["female"] * 200
    ds = toy(labels)
    probe, test = ds.split(100, seed=3)
    again, _ = ds.split(100, seed=3)
    other, _ = ds.split(100, seed=4)
    ids = lambda d: [s.id for s in d]
    assert len(probe) == 100 and len(test) == 400
    assert ids(probe) == ids(again) and ids(probe) != ids(other)
    assert not set(ids(probe)) & set(ids(test))
    assert sorted(ids(probe) + ids(test)) == sorted(ids(ds))
    assert probe.counts() == {"male": 60, "female": 40}
    # Original order kept inside each part.
    assert ids(probe) == sorted(ids(probe), key=lambda i: int(i[1:]))
    # Uneven quotas: 7 of 10 with 3 labels gives 2/2/3 style largest-remainder rounding.
    lang = toy(["English"] * 4 + ["German"] * 3 + ["French"] * 3, task=LANGUAGE)
    p, _ = lang.split(7, seed=0)
    assert sum(p.counts().values()) == 7 and p.counts()["English"] == 3
    p2, t2 = lang.split(7, seed=0, stratify=False)
    assert len(p2) == 7 and len(t2) == 3
    for n in (0, 500):
        with pytest.raises(ValueError, match="n_probe"):
            ds.split(n)


# ------------------------------------------------------------------------------- Hugging Face


def hf_rows() -> list[dict]:
    buf = io.BytesIO()
    sf.write(buf, np.full(4410, 0.2, dtype=np.float32), 44100, format="WAV", subtype="PCM_16")
    return [
        {
            "file": "a.wav",
            "audio": {"array": np.full(8000, 0.1), "sampling_rate": 8000},
            "attribute_label": " Male",
        },
        {
            "file": "b.wav",
            "audio": {"bytes": buf.getvalue(), "path": None},
            "attribute_label": "FEMALE",
        },
    ]


def test_from_hf_dataset_with_plain_rows():
    ds = from_hf_dataset(hf_rows(), GENDER)
    assert [(s.id, s.label) for s in ds] == [("a.wav", "male"), ("b.wav", "female")]
    with pytest.warns(AudioNote, match="hf:gender: resampling 1 of 2 clips from 8000 Hz"):
        assert ds[0].load(16000).shape == (16000,)
    with pytest.warns(AudioNote):
        b = ds[1].load(16000)
    assert b.shape == (1600,) and abs(float(b.mean()) - 0.2) < 1e-3


def test_from_hf_dataset_errors():
    rows = hf_rows()
    with pytest.raises(DataError, match="'label'.*attribute_label"):
        from_hf_dataset(rows, GENDER, label_column="label")
    rows[1]["attribute_label"] = "child"
    with pytest.raises(DataError, match="'child'"):
        from_hf_dataset(rows, GENDER)
    rows[1] = {"audio": {"path": None}, "attribute_label": "male"}
    with pytest.raises(DataError, match=r"1 clip\(s\) that do not decode.*\n  row 1 \(1\): audio dict"):
        from_hf_dataset(rows, GENDER)


def test_from_hf_dataset_with_real_datasets():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "audio": {
                "array": datasets.Sequence(datasets.Value("float32")),
                "sampling_rate": datasets.Value("int32"),
            },
            "gender": datasets.ClassLabel(names=["male", "female"]),
        }
    )
    hf = datasets.Dataset.from_dict(
        {
            "audio": [
                {"array": [0.1] * 1600, "sampling_rate": 16000},
                {"array": [0.2] * 800, "sampling_rate": 8000},
            ],
            "gender": [1, 0],
        },
        features=features,
    )
    ds = from_hf_dataset(hf, GENDER, label_column="gender", id_column=None)
    assert [(s.id, s.label) for s in ds] == [("0", "female"), ("1", "male")]
    assert ds[0].load(16000).shape == (1600,)
    with pytest.warns(AudioNote):
        assert ds[1].load(16000).shape == (1600,)
