"""Audio checks and conversion: every clip goes through :func:`prepare_waveform` before a model.

Nothing here guesses silently. Integer PCM (``int8/16/32``, ``uint8``) is converted exactly;
float audio far above full scale, ambiguous channel layouts, and empty, NaN, infinite, too short
or too long clips raise :class:`AudioError` naming the clip. Resampling, mixdown and truncation
are reported as :class:`AudioNote` warnings (or handed back as :class:`Conversion` records to a
caller that summarises many clips, as data sets do: one note per data set, not one per clip).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jaxtyping import Shaped

from .errors import AudioError as AudioError
from .errors import AudioNote as AudioNote
from .errors import warn_user

#: The shortest clip (seconds) an encoder turns into at least one frame: one 25 ms analysis
#: window, 400 samples at 16 kHz (Whisper-style encoders need about 321 samples for one token).
MIN_SECONDS = 0.025
#: Float audio is expected in [-1, 1]. A peak above this (24 dB over full scale) is taken as a
#: scaling mistake (e.g. 16-bit sample values stored as floats), not as a loud clip; overshoot
#: from resampling or lossy decoding, and noise mixed in at a low SNR, stay below it. Floats that
#: are all whole numbers with a peak above 1 are refused too (integer PCM cast to float).
MAX_FLOAT_PEAK = 16.0
#: The range of sampling rates accepted (Hz): telephone audio to high-resolution studio audio.
MIN_RATE, MAX_RATE = 1000, 768_000
#: More channels than this in a 2-D array means the layout is not (samples, channels) or
#: (channels, samples) of one clip (e.g. a batch of clips stacked into one array).
MAX_CHANNELS = 64


@dataclass(frozen=True)
class Conversion:
    """One change :func:`prepare_waveform` made to a clip.

    ``before``/``after`` are channels (``"mixdown"``: n -> 1), Hz (``"resample"``) or seconds
    (``"truncate"``: clip length -> the limit).

    Example:
        >>> Conversion("resample", 8000, 16000).describe()
        'resampling 8000 Hz -> 16000 Hz'
    """

    kind: Literal["mixdown", "resample", "truncate"]
    before: float
    after: float

    def describe(self) -> str:
        """What was done to one clip."""
        if self.kind == "mixdown":
            return f"mixing {self.before:g} channels down to mono"
        if self.kind == "resample":
            return f"resampling {self.before:g} Hz -> {self.after:g} Hz"
        return f"truncating {self.before:.2f} s to {self.after:g} s"

    @property
    def key(self) -> tuple[str, float] | tuple[str, float, float]:
        """Conversions with the same key are one note for a set of clips (a truncation's key
        leaves out the clip's own length)."""
        return (self.kind, self.after) if self.kind == "truncate" else (self.kind, self.before, self.after)

    def applies_to(self, info: ClipInfo) -> bool:
        """Whether a clip of ``info`` undergoes this conversion too."""
        if self.kind == "mixdown":
            return info.channels == self.before
        if self.kind == "resample":
            return info.sampling_rate == self.before
        return info.seconds > self.after

    def summary(self, count: int, total: int) -> str:
        """What is done to ``count`` of ``total`` clips.

        Example:
            >>> Conversion("resample", 8000, 16000).summary(120, 500)
            'resampling 120 of 500 clips from 8000 Hz to 16000 Hz'
        """
        if self.kind == "mixdown":
            return f"mixing {count} of {total} clips with {self.before:g} channels down to mono"
        if self.kind == "resample":
            return (
                f"resampling {count} of {total} clips from {self.before:g} Hz to {self.after:g} Hz"
            )
        return f"truncating {count} of {total} clips longer than {self.after:g} s to {self.after:g} s"


@dataclass(frozen=True)
class ClipInfo:
    """What a clip is before conversion: its length in frames, channels and sampling rate."""

    frames: int
    channels: int
    sampling_rate: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sampling_rate


def array_info(wav: np.ndarray | torch.Tensor, sampling_rate: object, name: str = "clip") -> ClipInfo:
    """:class:`ClipInfo` of an in-memory clip from its shape (no pass over the samples)."""
    frames, channels, _ = channel_layout(tuple(as_samples(wav, name).shape), name)
    return ClipInfo(frames, channels, check_rate(sampling_rate, name))


def check_rate(rate: object, name: str = "clip") -> int:
    """A sampling rate as a positive ``int``; :class:`AudioError` for anything else.

    Any integral number is accepted (``16000``, ``np.int64(16000)``, ``16000.0``, a 0-d array or
    tensor); fractional, non-finite, non-positive and non-numeric values are refused.

    Example:
        >>> check_rate(np.int64(16000)), check_rate(16000.0)
        (16000, 16000)
        >>> check_rate(16000.5)
        Traceback (most recent call last):
        ...
        audiolens.errors.AudioError: clip: sampling rate must be a whole number of Hz, got 16000.5
    """
    value = rate
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise AudioError(f"{name}: sampling rate must be a number of Hz, got {rate!r}")
    if isinstance(value, numbers.Integral):
        hz = int(value)
    else:
        value = float(value)
        if not math.isfinite(value) or not value.is_integer():
            raise AudioError(f"{name}: sampling rate must be a whole number of Hz, got {rate!r}")
        hz = int(value)
    if hz <= 0:
        raise AudioError(f"{name}: sampling rate must be positive, got {rate!r}")
    if not MIN_RATE <= hz <= MAX_RATE:
        # Far outside audio rates it is a mistake (seconds or kHz given for Hz), and resampling
        # from it would need an enormous filter.
        raise AudioError(f"{name}: sampling rate {hz} Hz is outside {MIN_RATE}..{MAX_RATE} Hz; give the rate in Hz")
    return hz


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def min_samples_at(rate: int) -> int:
    """The default shortest clip at ``rate``: :data:`MIN_SECONDS` worth of samples.

    Example:
        >>> min_samples_at(16000)
        400
    """
    return math.ceil(MIN_SECONDS * rate - 1e-9)


def channel_layout(shape: tuple[int, ...], name: str = "clip") -> tuple[int, int, bool]:
    """``(frames, channels, channels_first)`` of an array of ``shape``.

    A clip is ``(samples,)``, ``(samples, channels)`` (soundfile) or ``(channels, samples)``
    (torchaudio). The channel axis is the shorter one, since a usable clip has far more samples
    than channels; a square array, more than :data:`MAX_CHANNELS` channels or more than two axes
    raise :class:`AudioError`.

    Example:
        >>> channel_layout((16000, 2)), channel_layout((6, 16000)), channel_layout((16000,))
        ((16000, 2, False), (16000, 6, True), (16000, 1, False))
    """
    if len(shape) == 1:
        return shape[0], 1, False
    if len(shape) != 2:
        raise AudioError(f"{name}: expected 1-D or 2-D audio, got shape {shape}")
    rows, cols = shape
    if rows == cols and rows > 1:
        raise AudioError(
            f"{name}: cannot tell samples from channels in a square array of shape {shape}"
        )
    channels_first = rows < cols
    frames, channels = (cols, rows) if channels_first else (rows, cols)
    if channels > MAX_CHANNELS:
        raise AudioError(
            f"{name}: shape {shape} would be {channels} channels of {frames} samples; one clip is "
            f"(samples,), (samples, channels) or (channels, samples) with at most {MAX_CHANNELS} "
            "channels (pass several clips as a list, not as one stacked array)"
        )
    return frames, channels, channels_first


def to_float(wav: np.ndarray, name: str = "clip") -> np.ndarray:
    """Samples as float32 in [-1, 1]: integer PCM scaled exactly, floats checked.

    Signed integers are divided by ``2**(bits-1)`` (int16: 32768); unsigned ones are offset
    binary, so ``2**(bits-1)`` is subtracted first (uint8: 128 is silence). Float input must be
    finite and not far above full scale (:data:`MAX_FLOAT_PEAK`), and not whole numbers above 1:
    16-bit sample values stored as floats are refused, with the division that fixes them, rather
    than guessed at.

    Example:
        >>> to_float(np.array([0, 128, 255], dtype=np.uint8))
        array([-1.       ,  0.       ,  0.9921875], dtype=float32)
        >>> to_float(np.array([-32768, 16384], dtype=np.int16))
        array([-1. ,  0.5], dtype=float32)
    """
    dtype = wav.dtype
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise AudioError(f"{name}: audio must be numeric, got dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise AudioError(f"{name}: audio must be real, got dtype {dtype}")
    if np.issubdtype(dtype, np.integer):
        if dtype.itemsize == 8:  # no PCM format is 64-bit: Python ints or an int64 array
            return _wide_integers(wav, name)
        half = 2.0 ** (8 * dtype.itemsize - 1)
        offset = half if np.issubdtype(dtype, np.unsignedinteger) else 0.0
        return ((wav.astype(np.float64) - offset) / half).astype(np.float32)
    wav = wav.astype(np.float32)
    if np.isnan(wav).any():
        raise AudioError(f"{name}: the clip contains NaN samples")
    if np.isinf(wav).any():
        raise AudioError(f"{name}: the clip contains infinite samples")
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    integral = peak > 1.0 and bool((wav == np.round(wav)).all())
    if peak > MAX_FLOAT_PEAK or integral:
        why = "every sample is a whole number" if integral else "far above full scale 1.0"
        if peak <= 2.0**15:
            hint = "if these are 16-bit sample values, divide by 32768 (or pass the int16 array)"
        elif peak <= 2.0**31:
            hint = "if these are 24- or 32-bit sample values, divide by 2**23 or 2**31"
        else:
            hint = "no integer PCM format reaches this"
        raise AudioError(
            f"{name}: float samples reach {peak:g} and {why}; {hint}, otherwise scale the clip "
            "into [-1, 1]"
        )
    return wav


def _wide_integers(wav: np.ndarray, name: str) -> np.ndarray:
    """Integer samples without a PCM width (Python ints, int64/uint64 arrays), scaled by the
    width their values show: within int16 → int16 (÷ 32768); beyond 24 bits but within int32 →
    int32 (÷ 2**31); between (24-bit or quiet 32-bit?) or beyond int32 → refused."""
    lo, hi = int(wav.min()), int(wav.max())
    if -(2**15) <= lo and hi < 2**15:
        return (wav.astype(np.float64) / 2.0**15).astype(np.float32)
    if -(2**31) <= lo and hi < 2**31 and max(-lo, hi) > 2**23:
        return (wav.astype(np.float64) / 2.0**31).astype(np.float32)
    if -(2**31) <= lo and hi < 2**31:
        raise AudioError(
            f"{name}: integer samples reach {max(-lo, hi)}, beyond 16-bit but within 24-bit range, "
            "so the PCM width is ambiguous: pass np.int32 for 32-bit PCM, or divide by 2**23 and "
            "pass floats for 24-bit PCM"
        )
    raise AudioError(
        f"{name}: integer samples reach {max(-lo, hi)}, beyond every PCM format (at most 32 bits); "
        "pass int16/int32 PCM or floats in [-1, 1]"
    )


def as_samples(wav: object, name: str = "clip") -> np.ndarray:
    """One clip as a NumPy array: arrays as they are, tensors of any dtype (bfloat16 and
    float16 exactly widened to float32), lists of numbers (or of equal-length channel rows).

    Anything else (a string, a path, ragged lists) raises :class:`AudioError` saying what a
    clip may be.

    Example:
        >>> as_samples([0, 16384, -32768]).dtype  # Python ints: scaled by their range later
        dtype('int64')
        >>> as_samples(torch.ones(3, dtype=torch.bfloat16)).dtype
        dtype('float32')
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu()
        if wav.dtype in (torch.bfloat16, torch.float16):
            wav = wav.float()  # NumPy has no bfloat16; both widen exactly
        return wav.numpy()
    if isinstance(wav, np.ndarray):
        return wav
    if isinstance(wav, (list, tuple)):
        try:
            arr = np.asarray(wav)
        except ValueError as exc:
            raise AudioError(
                f"{name}: a list clip must hold numbers, or channel rows of equal length ({exc})"
            ) from None
        if arr.dtype == object:
            raise AudioError(f"{name}: a list clip must hold numbers, got {type(wav[0]).__name__} items")
        return arr
    raise AudioError(
        f"{name}: expected the samples as a NumPy array, a torch tensor or a list of numbers, got "
        f"{type(wav).__name__}" + (" (to read a file, use load_audio)" if isinstance(wav, (str, Path)) else "")
    )


def prepare_waveform(
    wav: Shaped[np.ndarray, "*shape"] | Shaped[torch.Tensor, "*shape"],
    sampling_rate: int,
    target_rate: int,
    *,
    name: str = "clip",
    max_seconds: float | None = None,
    truncate: bool = False,
    min_samples: int | None = None,
    notes: list[Conversion] | None = None,
) -> np.ndarray:
    """Return ``wav`` as mono float32 in [-1, 1] at ``target_rate``, or raise :class:`AudioError`.

    ``wav`` is ``(samples,)``, ``(samples, channels)`` or ``(channels, samples)`` (see
    :func:`channel_layout`), float in [-1, 1] or integer PCM (see :func:`to_float`). Rates may
    be any integral number (:func:`check_rate`). Clips shorter than ``min_samples`` at
    ``target_rate`` (default: :data:`MIN_SECONDS`, 400 samples at 16 kHz) raise: the encoder
    would see no audio. Clips longer than ``max_seconds`` raise unless ``truncate=True``, in which
    case they are cut.

    Mixdown, resampling and truncation warn :class:`AudioNote`; when ``notes`` is a list they are
    appended to it as :class:`Conversion` records instead (for a caller that reports them once).

    Example:
        >>> x = prepare_waveform(np.zeros((44100, 2)) + 0.1, 44100, 16000, notes=[])
        >>> x.shape, x.dtype
        ((16000,), dtype('float32'))
        >>> float(prepare_waveform(np.full(16000, 128, dtype=np.uint8), 16000, 16000).max())
        0.0
    """
    sampling_rate, target_rate = check_rate(sampling_rate, name), check_rate(target_rate, name)
    wav = as_samples(wav, name)
    if wav.size == 0:
        raise AudioError(f"{name}: the clip is empty")
    done: list[Conversion] = []
    _, channels, channels_first = channel_layout(wav.shape, name)
    wav = to_float(wav, name)
    if wav.ndim == 2:
        if channels > 1:
            done.append(Conversion("mixdown", channels, 1))
        wav = wav.mean(axis=0 if channels_first else 1)
    if sampling_rate != target_rate:
        from scipy.signal import resample_poly

        done.append(Conversion("resample", sampling_rate, target_rate))
        ratio = Fraction(target_rate, sampling_rate)
        wav = resample_poly(wav, ratio.numerator, ratio.denominator).astype(np.float32)
    if max_seconds is not None and not (_is_number(max_seconds) and math.isfinite(max_seconds) and max_seconds > 0):
        raise AudioError(f"{name}: max_seconds must be a positive number of seconds or None, got {max_seconds!r}")
    if min_samples is not None and not (isinstance(min_samples, numbers.Integral) and min_samples >= 1):
        raise AudioError(f"{name}: min_samples must be a positive whole number or None, got {min_samples!r}")
    shortest = min_samples_at(target_rate) if min_samples is None else int(min_samples)
    if len(wav) < shortest:
        raise AudioError(
            f"{name}: {len(wav)} samples at {target_rate} Hz ({1000 * len(wav) / target_rate:.1f} "
            f"ms) is shorter than one analysis window ({shortest} samples); the encoder would "
            "see no audio"
        )
    if max_seconds is not None and len(wav) > max_seconds * target_rate:
        seconds = len(wav) / target_rate
        if not truncate:
            raise AudioError(
                f"{name}: {seconds:.2f} s is longer than the model accepts ({max_seconds:g} s); "
                "pass truncate=True to cut it explicitly"
            )
        done.append(Conversion("truncate", seconds, max_seconds))
        wav = wav[: int(max_seconds * target_rate)]
    if notes is not None:
        notes.extend(done)
    else:
        for c in done:
            warn_user(f"{name}: {c.describe()}", AudioNote)
    return np.ascontiguousarray(wav, dtype=np.float32)


def prepare_clips(
    audios: object,
    sampling_rate: object,
    target_rate: int,
    *,
    ids: Sequence[str] | None = None,
    max_seconds: float | None = None,
    truncate: bool = False,
) -> list[np.ndarray]:
    """:func:`prepare_waveform` for a list of clips with one rate or one rate per clip; each
    kind of conversion is warned once for the whole list, with a count, at the caller's line.

    Example:
        >>> import warnings
        >>> stereo = [np.full((44100, 2), 0.1)] * 6
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     waves = prepare_clips(stereo, 44100, 16000)
        >>> [str(w.message) for w in caught]  # doctest: +NORMALIZE_WHITESPACE
        ['mixing 6 of 6 clips with 2 channels down to mono',
         'resampling 6 of 6 clips from 44100 Hz to 16000 Hz']
    """
    if isinstance(audios, (np.ndarray, torch.Tensor)):
        raise AudioError(
            f"expected a list of clips, got one {type(audios).__name__} of shape {tuple(audios.shape)}; "
            "wrap a single clip in a list ([wav]), and pass several clips as a list, not stacked"
        )
    if isinstance(audios, (str, bytes, Path)) or not isinstance(audios, Sequence):
        raise AudioError(f"expected a list of clips (arrays, tensors or lists of samples), got {audios!r:.80}")
    if len(audios) == 0:
        raise AudioError("expected at least one audio clip, got an empty list")
    if isinstance(sampling_rate, (str, bytes)):
        raise AudioError(f"sampling_rate must be a number of Hz (or a list with one per clip), got {sampling_rate!r}")
    if isinstance(sampling_rate, (np.ndarray, torch.Tensor)) and sampling_rate.ndim > 0:
        sampling_rate = sampling_rate.tolist()
    rates = list(sampling_rate) if isinstance(sampling_rate, Sequence) else [sampling_rate] * len(audios)
    if len(rates) != len(audios):
        raise AudioError(f"{len(rates)} sampling rates for {len(audios)} clips: give one rate, or one per clip")
    names = [f"clip {i!r}" for i in (range(len(audios)) if ids is None else ids)]
    if len(names) != len(audios):
        raise AudioError(f"{len(names)} ids for {len(audios)} clips")
    notes: list[Conversion] = []
    waves = [
        prepare_waveform(a, check_rate(sr, name), target_rate, name=name, max_seconds=max_seconds,
                         truncate=truncate, notes=notes)
        for a, sr, name in zip(audios, rates, names)
    ]
    counts: dict[tuple[str, float] | tuple[str, float, float], tuple[Conversion, int]] = {}
    for c in notes:
        first, n = counts.get(c.key, (c, 0))
        counts[c.key] = (first, n + 1)
    for c, n in counts.values():
        warn_user(c.summary(n, len(audios)), AudioNote)
    return waves


def file_info(path: str | Path) -> ClipInfo:
    """A cheap header check of an audio file: readable, not empty, not shorter than
    :data:`MIN_SECONDS`. :class:`AudioError` names the file otherwise.

    Example:
        >>> import soundfile as sf, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(p, np.full(8000, 0.1, dtype=np.float32), 8000)
        >>> file_info(p)
        ClipInfo(frames=8000, channels=1, sampling_rate=8000)
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types; the message names the file
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    clip = ClipInfo(int(info.frames), int(info.channels), int(info.samplerate))
    if clip.frames <= 0:
        raise AudioError(f"{path}: the clip is empty")
    if clip.seconds < MIN_SECONDS:
        raise AudioError(
            f"{path}: {1000 * clip.seconds:.1f} ms is shorter than one analysis window "
            f"({1000 * MIN_SECONDS:g} ms)"
        )
    return clip


def load_audio(
    path: str | Path,
    target_rate: int,
    *,
    max_seconds: float | None = None,
    truncate: bool = False,
    min_samples: int | None = None,
    notes: list[Conversion] | None = None,
) -> np.ndarray:
    """Read ``path`` with soundfile and pass it through :func:`prepare_waveform`.

    Example:
        >>> import soundfile as sf, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(p, np.full(8000, 0.1, dtype=np.float32), 8000)
        >>> load_audio(p, 16000, notes=[]).shape
        (16000,)
    """
    import soundfile as sf

    path = Path(path)
    try:
        declared = int(sf.info(str(path)).frames)
        wav, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises several types; the message names the file
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    declared = max(declared, wav_declared_frames(path) or 0)
    if len(wav) < declared:
        raise AudioError(
            f"{path}: truncated or corrupt: the header declares {declared} frames but "
            f"{len(wav)} could be read"
        )
    return prepare_waveform(
        wav, sr, target_rate, name=str(path), max_seconds=max_seconds, truncate=truncate,
        min_samples=min_samples, notes=notes,
    )


def wav_declared_frames(path: str | Path) -> int | None:
    """The frame count a RIFF/WAVE header declares (its ``data`` chunk size over the frame
    size), whatever the file really holds; None for other formats or an unreadable header.

    libsndfile clamps a truncated WAV file's frame count to what is there, so a cut file would
    otherwise load as a shorter clip without a word.
    """
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
                if kind == b"fmt ":
                    fmt = f.read(size + size % 2)
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack(order + "H", fmt[12:14])[0]
                elif kind == b"data":
                    if not block_align or size == 0xFFFFFFFF:  # streamed WAV: size unknown
                        return None
                    return int(size // block_align)
                else:
                    f.seek(size + size % 2, 1)
    except OSError:
        return None
