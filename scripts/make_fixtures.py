"""Regenerate the small audio fixtures under tests/fixtures/ (needs espeak-ng).

    python scripts/make_fixtures.py

Writes:
  sakura/data/{Gender,Language}/   tiny SAKURA-layout tracks, labels spelled oddly on purpose
  sakura_broken/data/Gender/       metadata naming missing files and an unknown label
  odd/                             a folder + labels.csv: stereo 44.1 kHz clip, empty clip,
                                   missing files, an unknown label
The output is deterministic (same bytes on every run).
"""

from __future__ import annotations

import csv
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from audiolens.data.sakura import SAKURA_COLUMNS
from audiolens.data.synth import LANGUAGES, speak
from audiolens.tasks import sakura_task

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
RATE = 16_000
SPEED = 230  # fast speech keeps the clips small

# (file, label as written in metadata.csv, text, voice)
GENDER = [
    ("f_hello.wav", " Female", "Hello.", "en+f2"),
    ("m_thanks.wav", "MALE ", "Thank you.", "en+m3"),
    ("f_morning.wav", "female", "Good morning.", "en-us+f4"),
    ("m_later.wav", "Male", "See you.", "en+m6"),
]
LANGUAGE = [
    ("en.wav", "english", "Hello.", "English"),
    ("de.wav", " German", "Guten Tag.", "German"),
    ("fr.wav", "FRENCH", "Bonjour.", "French"),
    ("zh.wav", "Chinese ", "你好。", "Chinese"),
    ("ja.wav", "japanese", "こんにちは。", "Japanese"),
    ("ko.wav", "Korean", "안녕하세요.", "Korean"),
]


def write_wav(path: Path, wav: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, rate, subtype="PCM_16", format="WAV")


def write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def sakura_rows(track: str, rows: list[tuple[str, str]]) -> list[list[str]]:
    task = sakura_task(track)
    q, mc = task.question, task.prompt("P3").question
    return [[f, lab, q, lab.strip(), mc, lab.strip()] for f, lab in rows]


def make_sakura(root: Path) -> None:
    track = root / "data" / "Gender"
    for f, _, text, voice in GENDER:
        write_wav(track / "audio" / f, speak(text, voice, speed=SPEED))
    write_csv(
        track / "metadata.csv",
        SAKURA_COLUMNS,
        sakura_rows("gender", [(g[0], g[1]) for g in GENDER]),
    )

    track = root / "data" / "Language"
    for f, _, text, lang in LANGUAGE:
        voice = LANGUAGES[lang][1]
        write_wav(track / "audio" / f, speak(text, voice, speed=SPEED))
    write_csv(
        track / "metadata.csv",
        SAKURA_COLUMNS,
        sakura_rows("language", [(g[0], g[1]) for g in LANGUAGE]),
    )


def tiny_clip() -> np.ndarray:
    """0.1 s of speech (3.2 kB as 16-bit)."""
    wav = speak("Yes.", "en+m1", speed=SPEED)
    start = int(np.argmax(np.abs(wav) > 0.05))
    return wav[start : start + RATE // 10]


def make_broken(root: Path) -> None:
    track = root / "data" / "Gender"
    write_wav(track / "audio" / "ok.wav", tiny_clip())
    write_wav(track / "audio" / "robot.wav", tiny_clip())
    rows = [
        ("ok.wav", "Female"),
        ("gone_1.wav", "male"),
        ("robot.wav", "robot"),
        ("gone_2.wav", "female"),
    ]
    write_csv(track / "metadata.csv", SAKURA_COLUMNS, sakura_rows("gender", rows))


def make_odd(folder: Path) -> None:
    # Stereo 44.1 kHz: exactly 11025 frames (0.25 s), which is 4000 samples at 16 kHz.
    speech = speak("Hello there.", "en+f3", speed=SPEED)
    ratio = Fraction(44_100, RATE)
    hi = resample_poly(speech, ratio.numerator, ratio.denominator)[:11025]
    write_wav(folder / "stereo_44k.wav", np.stack([hi, 0.5 * hi], axis=1), 44_100)
    write_wav(folder / "empty.wav", np.zeros(0, dtype=np.float32))
    write_wav(folder / "short.wav", tiny_clip())
    rows = [
        ["stereo_44k.wav", " Female"],
        ["empty.wav", "MALE"],
        ["short.wav", "robot"],
        ["missing_a.wav", "female"],
        ["missing_b.wav", "male"],
    ]
    write_csv(folder / "labels.csv", ("file", "label"), rows)


def main() -> None:
    for sub in ("sakura", "sakura_broken", "odd"):
        shutil.rmtree(FIXTURES / sub, ignore_errors=True)
    make_sakura(FIXTURES / "sakura")
    make_broken(FIXTURES / "sakura_broken")
    make_odd(FIXTURES / "odd")
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"fixtures written to {FIXTURES} ({total / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
