"""espeak-ng synthesis: sentence files, plans and splits (always), audio (when espeak-ng exists)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolens.cli import build_parser, main
from audiolens.data import load_sakura, synth
from audiolens.data.sakura import SAKURA_COLUMNS
from audiolens.tasks import sakura_task

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed"
)
CODES = [code for code, _ in synth.LANGUAGES.values()]


# ------------------------------------------------------------------------- sentences and plans


@pytest.mark.parametrize("split", [None, "test"])
@pytest.mark.parametrize("code", CODES)
def test_sentence_files(code, split):
    lines = synth.load_sentences(code, split)
    assert len(lines) >= 40
    assert len(set(lines)) == len(lines), "duplicate sentences"
    assert all(len(s) < 80 for s in lines), "keep sentences short"
    if code == "ja":  # espeak-ng reads kanji as "Chinese letter": kana only
        assert not any(re.search(r"[\u4e00-\u9fff]", s) for s in lines)
        assert all(re.search(r"[\u3040-\u309f]", s) for s in lines)
    if code == "ko":
        assert all(re.search(r"[\uac00-\ud7a3]", s) for s in lines)
    if code == "zh":
        assert all(re.search(r"[\u4e00-\u9fff]", s) for s in lines)


def test_split_items_partition():
    items = [str(i) for i in range(10)]
    train, val = synth.split_items(items, "train"), synth.split_items(items, "validation")
    assert val == ["3", "7"] and sorted(train + val, key=int) == items
    assert synth.split_items(items, None) == items
    for bad in ("dev", "test"):  # the test split has items of its own
        with pytest.raises(ValueError, match="split"):
            synth.split_items(items, bad)
    with pytest.raises(ValueError, match="split"):
        synth.plan("gender", 1, split="dev")


@pytest.mark.parametrize("code", CODES)
def test_test_sentences_are_new(code):
    # Not one test sentence, nor a near copy (case and punctuation aside), is in the other splits.
    def norm(s):
        return re.sub(r"[\W_]+", " ", s.lower()).strip()

    assert not {norm(s) for s in synth.load_sentences(code, "test")} & {norm(s) for s in synth.load_sentences(code)}


@pytest.mark.parametrize("track", ["gender", "language"])
def test_splits_share_no_sentence_and_no_voice(track):
    # Enough clips per label that every split's cycle uses each of its sentences once.
    n = max(len(synth.load_sentences("en", s)) for s in synth.SPLITS)
    plans = {s: synth.plan(track, n, seed=1, split=s) for s in synth.SPLITS}
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not {p.text for p in plans[a]} & {p.text for p in plans[b]}, (a, b)
        assert not {p.variant for p in plans[a]} & {p.variant for p in plans[b]}, (a, b)
    for split, ps in plans.items():
        assert len({p.variant for p in ps}) >= 2
        if track == "gender":  # voices of the right gender, every sentence used
            assert all(synth.voice_gender(p.variant) == p.label for p in ps)
            assert {p.text for p in ps} == set(synth.load_sentences("en", split))
    # None is train and validation together; the voice pools cover every variant once.
    assert set(synth.voice_variants(None)) == set(synth.voice_variants(None, "train")) | set(
        synth.voice_variants(None, "validation"))
    assert len(set(synth.voice_variants(None, "test")) | set(synth.voice_variants(None))) == 26
    with pytest.raises(ValueError, match="voice variants"):
        synth.voice_gender("whisper")


def test_plan_is_deterministic_and_balanced():
    a = synth.plan("language", 6, seed=0)
    assert a == synth.plan("language", 6, seed=0)
    assert a != synth.plan("language", 6, seed=1)
    task = sakura_task("language")
    assert [p.label for p in a] == [lab for lab in task.labels for _ in range(6)]
    assert len({p.file for p in a}) == len(a)
    for p in a:
        assert synth.PITCH_RANGE[0] <= p.pitch <= synth.PITCH_RANGE[1]
        assert synth.SPEED_RANGE[0] <= p.speed <= synth.SPEED_RANGE[1]
        code, base = synth.LANGUAGES[p.label]
        assert p.voice == f"{base}+{p.variant}" and p.text in synth.load_sentences(code)
    # Voices cycle: 16 clips of a label use each of the 16 variants once.
    b = [p for p in synth.plan("language", 16, seed=0) if p.label == "Korean"]
    assert len({p.variant for p in b}) == 16
    # Asking for more clips keeps the earlier ones (also past the sizes of the pools).
    many = synth.plan("language", 60, seed=0)
    for label in task.labels:
        assert [p for p in many if p.label == label][:6] == [p for p in a if p.label == label]


def test_plan_rejects_unsynthesizable_tracks():
    with pytest.raises(ValueError, match="cannot synthesize"):
        synth.plan("emotion", 2)
    with pytest.raises(ValueError, match="n_per_label"):
        synth.plan("gender", 0)


def test_missing_espeak_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(synth.SynthError, match="apt-get install espeak-ng"):
        synth.synthesize(tmp_path, ["gender"], n_per_label=1)
    assert main(["synth", "--out", str(tmp_path), "--per-label", "1"]) == 2
    assert not any(tmp_path.iterdir())


def test_cli_parser():
    args = build_parser().parse_args(
        ["synth", "--out", "x", "--tracks", "gender", "--per-label", "3", "--split", "test"]
    )
    assert (args.out, args.tracks, args.per_label, args.seed, args.split) == (
        Path("x"),
        ["gender"],
        3,
        0,
        "test",
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["synth", "--out", "x", "--tracks", "emotion"])


# ------------------------------------------------------------------------------ with espeak-ng


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@needs_espeak
def test_synthesize_is_byte_identical_for_a_seed(tmp_path):
    a = synth.synthesize(tmp_path / "a", n_per_label=2, seed=5, split="test")
    b = synth.synthesize(tmp_path / "b", n_per_label=2, seed=5, split="test", workers=1)
    fa, fb = files(a), files(b)
    assert len(fa) == 2 * 2 + 8 * 2 + 2
    assert fa == fb
    c = synth.synthesize(tmp_path / "c", ["gender"], n_per_label=2, seed=6, split="test")
    assert files(c)["data/Gender/audio/male_0000.wav"] != fa["data/Gender/audio/male_0000.wav"]


@needs_espeak
def test_synthesized_layout_loads_as_sakura(tmp_path):
    root = synth.synthesize(tmp_path, ["language"], n_per_label=1, seed=0, split="train")
    track = root / "data" / "Language"
    with open(track / "metadata.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0])[:6] == SAKURA_COLUMNS
    task = sakura_task("language")
    assert {r["single_instruction"] for r in rows} == {task.question}
    assert all(r["attribute_label"] == r["single_answer"] == r["multi_answer"] for r in rows)
    assert all(r["split"] == "train" for r in rows)
    ds = load_sakura(root, "language")
    assert ds.counts() == dict.fromkeys(task.labels, 1)
    for s in ds:
        info = sf.info(str(s.path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.5 < info.duration < 8.0


@needs_espeak
def test_generate_matches_written_files(tmp_path):
    utts = list(synth.generate("gender", 2, seed=2, split="test"))
    plans = synth.plan("gender", 2, seed=2, split="test")
    assert [(u.label, u.text, u.voice) for u in utts] == [(p.label, p.text, p.voice) for p in plans]
    root = synth.synthesize(tmp_path, ["gender"], n_per_label=2, seed=2, split="test")
    for u, p in zip(utts, plans):
        assert u.waveform.dtype == np.float32 and u.waveform.ndim == 1
        on_disk, sr = sf.read(str(root / "data" / "Gender" / "audio" / p.file), dtype="float32")
        assert sr == 16000 and on_disk.shape == u.waveform.shape
        np.testing.assert_allclose(on_disk, u.waveform, atol=1 / 32767)  # 16-bit quantisation


@needs_espeak
def test_speak_resamples_to_16k():
    wav = synth.speak("One two three.", "en+m1", speed=175)
    # espeak-ng speaks this in roughly a second; a wrong resampling ratio would halve or double it.
    assert 0.6 < len(wav) / 16000 < 2.5
    assert np.abs(wav).max() <= 1.0 and np.abs(wav).max() > 0.1
    # espeak-ng itself would silently fall back to its default voice for these.
    for voice in ("no-such-voice", "en+m99"):
        with pytest.raises(synth.SynthError, match=re.escape(repr(voice))):
            synth.speak("hello", voice)


@needs_espeak
@pytest.mark.parametrize("code", CODES)
def test_espeak_reads_every_sentence_in_its_own_language(code):
    assert synth.untranslated(code) == []


@needs_espeak
def test_cli_synth(tmp_path, capsys):
    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path),
                "--tracks",
                "gender",
                "--per-label",
                "2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert "gender: 4 clips" in capsys.readouterr().out
    assert len(list((tmp_path / "data" / "Gender" / "audio").glob("*.wav"))) == 4


@needs_espeak
def test_every_voice_of_every_split_exists():
    # espeak-ng falls back silently on an unknown variant, which would mislabel the clips.
    for split in synth.SPLITS:
        for variant in synth.voice_variants(None, split):
            synth.check_voice(f"en+{variant}")
