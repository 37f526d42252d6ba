"""Synthetic SAKURA-style speech made with espeak-ng, for tests and demos without downloads.

Two tracks can be synthesized: ``gender`` (English sentences, male vs female voice variants) and
``language`` (eight languages, sentences from ``data/sentences/{code}.txt``). Everything is a
pure function of the seed: the same call writes the same bytes.

Three disjoint splits, so that a model can be trained, tuned and then reported honestly:

- ``"train"``: three of every four sentences of ``data/sentences/{code}.txt`` and of the voice
  variants of each pool;
- ``"validation"``: the fourth sentence and voice, for choosing a recipe, a seed or a threshold;
- ``"test"``: sentences of ``data/sentences/test/{code}.txt`` and voice variants that neither
  other split uses, to report what was never used for a choice.

``None`` takes the train and validation items together.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from audiolens.data.dataset import AttributeDataset, Sample
from audiolens.data.sakura import SAKURA_COLUMNS, TRACKS
from audiolens.tasks import sakura_task

from ..errors import SynthError as SynthError

Split = Literal["train", "validation", "test"] | None
SPLITS = ("train", "validation", "test")

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050  # espeak-ng always writes 22.05 kHz

# Task label -> (sentence file code, espeak-ng voice). Mandarin uses the pinyin voice because
# the plain ``cmn`` voice reads many common characters as English letters and tone digits.
LANGUAGES: dict[str, tuple[str, str]] = {
    "English": ("en", "en"),
    "German": ("de", "de"),
    "Spanish": ("es", "es"),
    "French": ("fr", "fr"),  # "fr", not "fr-fr": the alias is what takes the +f variants
    "Italian": ("it", "it"),
    "Chinese": ("zh", "cmn-latn-pinyin"),
    "Japanese": ("ja", "ja"),  # kana only: kanji are read as "Chinese letter"
    "Korean": ("ko", "ko"),
}
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Andrea", "belinda", "steph")
ENGLISH_ACCENTS = ("en", "en-us")
PITCH_RANGE = (35, 65)  # espeak -p, 0..99 (50 is the variant's own pitch)
SPEED_RANGE = (140, 185)  # espeak -s, words per minute
HELD_OUT_EVERY = 4  # every 4th packaged sentence / voice belongs to the validation split
# The test split's voices: the first five of each gender (case-insensitive order) among the
# variants that declare one, leaving out those in the pools above, those derived from one of
# them (steph2, steph3) and effect voices (whisper, croak, robots, Demonic, AnxiousAndy, Storm,
# grandma). Fixed by that rule before any model was scored on them.
TEST_MALE_VARIANTS = ("Andy", "antonio", "Denis", "Henrique", "Hugo")
TEST_FEMALE_VARIANTS = ("Alicia", "anika", "Annie", "aunty", "linda")

SYNTH_TRACKS = ("gender", "language")
# Columns of metadata.csv after SAKURA's own (the speaker is the voice variant, for probe folds).
METADATA_EXTRA = ("text", "voice", "pitch", "speed", "split", "speaker")


class Utterance(NamedTuple):
    """One synthesized clip: mono float32 at 16 kHz, its label, the text and the voice."""

    waveform: np.ndarray
    label: str
    text: str
    voice: str


@dataclass(frozen=True)
class UtterancePlan:
    """What to synthesize for one clip (everything random is decided here, from the seed)."""

    file: str
    label: str
    text: str
    voice: str  # e.g. "en-us+f2"
    variant: str  # e.g. "f2": the speaker identity that splits keep apart
    pitch: int
    speed: int


def require_espeak() -> str:
    """Path of the espeak-ng binary, or a :class:`SynthError` saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthError(
            "espeak-ng is not installed (not found on PATH); install it with "
            "`apt-get install espeak-ng` (Debian/Ubuntu) to synthesize speech"
        )
    return exe


@cache
def load_sentences(code: str, split: Split = None) -> tuple[str, ...]:
    """The packaged sentences of language ``code`` (``en``, ``de``, ..., ``zh``, ``ja``, ``ko``)
    that belong to ``split`` (``None``: train and validation together).

    Example:
        >>> len(load_sentences("en")) >= 40, len(load_sentences("en", "test")) >= 40
        (True, True)
    """
    if split == "test":
        return _read_sentences(f"test/{code}.txt", code)
    return tuple(split_items(_read_sentences(f"{code}.txt", code), split))


def _read_sentences(name: str, code: str) -> tuple[str, ...]:
    folder = resources.files("audiolens.data").joinpath("sentences")
    try:
        text = folder.joinpath(*name.split("/")).read_text("utf-8")
    except FileNotFoundError:
        raise ValueError(f"no sentence file for language code {code!r}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def split_items(items: Sequence[str], split: Split) -> list[str]:
    """The part of the packaged ``items`` (sentences or voices) that belongs to ``split``: every
    4th item is held out for validation. The test split has items of its own
    (:func:`load_sentences`, :func:`voice_variants`), none of them in ``items``.

    Example:
        >>> split_items("abcdefgh", "validation"), split_items("abcdefgh", "train")
        (['d', 'h'], ['a', 'b', 'c', 'e', 'f', 'g'])
    """
    if split is None:
        return list(items)
    if split not in ("train", "validation"):
        raise ValueError(f"split_items takes 'train', 'validation' or None, got {split!r}")
    held_out = split == "validation"
    return [x for i, x in enumerate(items) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out]


def voice_variants(gender: Literal["male", "female"] | None, split: Split = None) -> tuple[str, ...]:
    """The espeak-ng voice variants of ``gender`` (``None``: both) in ``split``.

    Example:
        >>> voice_variants("male", "validation"), voice_variants("female", "test")[:2]
        (('m4', 'm8'), ('Alicia', 'anika'))
    """
    genders = ("male", "female") if gender is None else (gender,)
    pools: dict[str, tuple[str, ...]]
    if split == "test":
        pools = {"male": TEST_MALE_VARIANTS, "female": TEST_FEMALE_VARIANTS}
        return tuple(v for g in genders for v in pools[g])
    pools = {"male": MALE_VARIANTS, "female": FEMALE_VARIANTS}
    return tuple(v for g in genders for v in split_items(pools[g], split))


def voice_gender(variant: str) -> Literal["male", "female"]:
    """The gender an espeak-ng voice variant of any split declares (``"m3"``: male).

    Example:
        >>> voice_gender("en-us+f2"), voice_gender("Hugo")
        ('female', 'male')
    """
    variant = variant.rpartition("+")[2]
    if variant in MALE_VARIANTS + TEST_MALE_VARIANTS:
        return "male"
    if variant in FEMALE_VARIANTS + TEST_FEMALE_VARIANTS:
        return "female"
    raise ValueError(f"{variant!r} is not one of the synthesizer's voice variants")


def _rng(seed: int, *names: str) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process, which would break determinism.
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _cycle(rng: np.random.Generator, pool: Sequence[str], n: int) -> list[str]:
    """``n`` picks from ``pool``, each item used once per round, in a fresh order each round."""
    out: list[str] = []
    while len(out) < n:
        out.extend(pool[int(i)] for i in rng.permutation(len(pool)))
    return out[:n]


def plan(track: str, n_per_label: int, seed: int = 0, split: Split = None) -> list[UtterancePlan]:
    """Decide text, voice, pitch and speed of every clip of ``track`` (no audio yet).

    Example:
        >>> p = plan("gender", 2, seed=0, split="validation")
        >>> [u.file for u in p]
        ['male_0000.wav', 'male_0001.wav', 'female_0000.wav', 'female_0001.wav']
    """
    task = sakura_task(track)
    if task.name not in SYNTH_TRACKS:
        raise ValueError(f"cannot synthesize track {track!r}; choose from {SYNTH_TRACKS}")
    if n_per_label < 1:
        raise ValueError(f"n_per_label must be >= 1, got {n_per_label}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    out: list[UtterancePlan] = []
    for label in task.labels:
        # Separate streams per label and per choice, so asking for more clips keeps the first ones.
        rng = _rng(seed, task.name, label, "jitter")
        bases: tuple[str, ...]
        if task.name == "gender":
            code, bases = "en", ENGLISH_ACCENTS
            variants = voice_variants("male" if label == "male" else "female", split)
        else:
            code, base = LANGUAGES[label]
            bases = (base,)
            variants = voice_variants(None, split)
        texts = _cycle(_rng(seed, task.name, label, "text"), load_sentences(code, split), n_per_label)
        voices = _cycle(_rng(seed, task.name, label, "voice"), variants, n_per_label)
        for k in range(n_per_label):
            base = bases[int(rng.integers(len(bases)))]
            out.append(
                UtterancePlan(
                    file=f"{label.lower()}_{k:04d}.wav",
                    label=label,
                    text=texts[k],
                    voice=f"{base}+{voices[k]}",
                    variant=voices[k],
                    pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                    speed=int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
                )
            )
    return out


@cache
def _known_voices(exe: str) -> tuple[frozenset[str], frozenset[str]]:
    """(language voices, variants) that ``exe`` knows, parsed from ``--voices`` listings."""

    def listing(arg: str) -> list[str]:
        out = subprocess.run([exe, arg], check=False, capture_output=True, text=True).stdout
        return out.splitlines()[1:]  # drop the header

    bases: set[str] = set()
    for line in listing("--voices"):
        parts = line.split()
        if len(parts) >= 5:
            bases.update({parts[1], parts[4].rsplit("/", 1)[-1]})
            bases.update(re.findall(r"\(([^ )]+) \d+\)", line))
    variants = {
        m.group(1)
        for line in listing("--voices=variant")
        if (m := re.search(r"!v/(.+?)\s*$", line))
    }
    return frozenset(b.lower() for b in bases), frozenset(variants)


def check_voice(voice: str) -> None:
    """Raise :class:`SynthError` for a voice espeak-ng does not have.

    espeak-ng itself silently falls back to its default voice, which would mislabel clips.
    """
    base, _, variant = voice.partition("+")
    bases, variants = _known_voices(require_espeak())
    if base.lower() not in bases or (variant and variant not in variants):
        raise SynthError(
            f"espeak-ng has no voice {voice!r} (it would silently use its default voice); "
            "see `espeak-ng --voices` and `espeak-ng --voices=variant`"
        )


def speak(text: str, voice: str, pitch: int = 50, speed: int = 175) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng; mono float32 at 16 kHz.

    Example:
        >>> wav = speak("Hello there.", "en+f2")  # doctest: +SKIP
        >>> wav.dtype, wav.ndim  # doctest: +SKIP
        (dtype('float32'), 1)
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    exe = require_espeak()
    check_voice(voice)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        # Text goes through stdin so a sentence can never be taken for an option.
        cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(out), "--stdin"]
        proc = subprocess.run(cmd, check=False, input=text.encode("utf-8"), capture_output=True)
        if proc.returncode != 0 or not out.is_file():
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise SynthError(f"espeak-ng failed for voice {voice!r} on {text!r}: {err}")
        wav, sr = sf.read(str(out), dtype="float32")
    if wav.size == 0:
        raise SynthError(f"espeak-ng produced no audio for voice {voice!r} on {text!r}")
    if sr != ESPEAK_RATE:
        raise SynthError(f"espeak-ng wrote {sr} Hz, expected {ESPEAK_RATE} Hz")
    ratio = Fraction(SAMPLE_RATE, ESPEAK_RATE)  # 320/441
    wav = resample_poly(wav, ratio.numerator, ratio.denominator)
    peak = float(np.abs(wav).max())
    if peak > 1.0:  # resampling can overshoot full scale; scale rather than clip
        wav = wav / peak
    return wav.astype(np.float32)


def render(p: UtterancePlan) -> np.ndarray:
    """The audio of one planned clip."""
    return speak(p.text, p.voice, p.pitch, p.speed)


def generate(
    track: str,
    n_per_label: int,
    seed: int = 0,
    split: Split = None,
    *,
    workers: int = 2,
) -> Iterator[Utterance]:
    """Yield ``Utterance(waveform, label, text, voice)`` for ``track`` without writing files.

    Clips come in plan order (label by label); ``workers`` espeak-ng processes run at once.

    Example:
        >>> for wav, label, text, voice in generate("language", 1, split="train"):  # doctest: +SKIP
        ...     print(label, voice, round(len(wav) / 16000, 1))
    """
    require_espeak()
    plans = plan(track, n_per_label, seed, split)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, wav in zip(plans, pool.map(render, plans)):
            yield Utterance(wav, p.label, p.text, p.voice)


def synthetic_dataset(
    track: str, n_per_label: int, seed: int = 0, split: Split = None, *, workers: int = 2
) -> AttributeDataset:
    """An in-memory :class:`AttributeDataset` of ``track`` whose samples name their speaker (the
    voice variant) and sentence, so that probes can group folds by them.

    Example:
        >>> ds = synthetic_dataset("gender", 4, split="test")  # doctest: +SKIP
        >>> ds[0].speaker, ds.counts()  # doctest: +SKIP
        ('Hugo', {'male': 4, 'female': 4})
    """
    require_espeak()
    plans = plan(track, n_per_label, seed, split)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        wavs = list(pool.map(render, plans))
    name = f"espeak-ng {sakura_task(track).name}" + (f" ({split})" if split else "")
    samples = [
        Sample(f"{split or 'all'}/{p.file}", p.label, audio=wav, sampling_rate=SAMPLE_RATE, speaker=p.variant,
               sentence=p.text)
        for p, wav in zip(plans, wavs)
    ]
    return AttributeDataset(sakura_task(track), samples, name)


def _write_track(
    out_dir: Path, track: str, plans: list[UtterancePlan], split: Split, workers: int
) -> Path:
    import soundfile as sf

    task = sakura_task(track)
    track_dir = out_dir / "data" / TRACKS[task.name]
    audio_dir = track_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, wav in zip(plans, pool.map(render, plans)):
            sf.write(str(audio_dir / p.file), wav, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    multi = task.prompt("P3").question
    with open(track_dir / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(SAKURA_COLUMNS + METADATA_EXTRA)
        for p in plans:
            w.writerow(
                [
                    p.file,
                    p.label,
                    task.question,
                    p.label,
                    multi,
                    p.label,
                    p.text,
                    p.voice,
                    p.pitch,
                    p.speed,
                    split or "",
                    p.variant,  # the speaker identity (accents share it)
                ]
            )
    return track_dir


def synthesize(
    out_dir: str | Path,
    tracks: Sequence[str] = ("gender", "language"),
    n_per_label: int = 50,
    seed: int = 0,
    split: Split = None,
    *,
    workers: int = 2,
) -> Path:
    """Write a SAKURA-layout data set under ``out_dir`` and return ``out_dir``.

    Produces ``out_dir/data/{Track}/audio/*.wav`` (16 kHz mono 16-bit) and
    ``out_dir/data/{Track}/metadata.csv`` with the official columns (instructions are Table I's
    question, answers the label) followed by ``text, voice, pitch, speed, split, speaker`` (the
    voice variant, which both English accents share).

    Example:
        >>> from audiolens.data import load_sakura
        >>> root = synthesize("/tmp/synth", ["gender"], n_per_label=4, split="test")  # doctest: +SKIP
        >>> load_sakura(root, "gender").counts()  # doctest: +SKIP
        {'male': 4, 'female': 4}
    """
    require_espeak()
    out_dir = Path(out_dir)
    tracks = [sakura_task(t).name for t in tracks]
    plans = {t: plan(t, n_per_label, seed, split) for t in tracks}  # validate all before writing
    for voice in sorted({p.voice for ps in plans.values() for p in ps}):
        check_voice(voice)
    for t in tracks:
        _write_track(out_dir, t, plans[t], split, workers)
    return out_dir


def untranslated(code: str) -> list[str]:
    """Sentences of language ``code`` that espeak-ng would read partly in another language.

    espeak-ng marks a switch as ``(en)`` in its phoneme output; any sentence listed here should
    be rewritten (e.g. Japanese kanji, loanwords).
    """
    exe = require_espeak()
    voice = next(v for c, v in LANGUAGES.values() if c == code)

    def phonemes(text: str) -> str:
        cmd = [exe, "-q", "-x", "-v", voice, "--stdin"]
        proc = subprocess.run(cmd, check=False, input=text.encode(), capture_output=True)
        return proc.stdout.decode("utf-8", "replace")

    sentences = load_sentences(code) + load_sentences(code, "test")
    if "(" not in phonemes("\n".join(sentences)):  # one call when all is well
        return []
    return [t for t in sentences if "(" in phonemes(t)]
