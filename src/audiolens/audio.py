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
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jaxtyping import Shaped

from .errors import AudioError as AudioError
from .errors import AudioNote as AudioNote

#: The shortest clip (seconds) an encoder turns into at least one frame: one 25 ms analysis
#: window, 400 samples at 16 kHz (Whisper-style encoders need about 321 samples for one token).
MIN_SECONDS = 0.025
#: Float audio is expected in [-1, 1]. A peak above this (24 dB over full scale) is taken as a
#: scaling mistake (e.g. 16-bit sample values stored as floats), not as a loud clip; overshoot
#: from resampling or lossy decoding, and noise mixed in at a low SNR, stay below it. Floats that
#: are all whole numbers with a peak above 1 are refused too (integer PCM cast to float).
MAX_FLOAT_PEAK = 16.0
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
    frames, channels, _ = channel_layout(tuple(wav.shape), name)
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
    return hz


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
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav)
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
            warnings.warn(f"{name}: {c.describe()}", AudioNote, stacklevel=2)
    return np.ascontiguousarray(wav, dtype=np.float32)


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
        wav, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises several types; the message names the file
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    return prepare_waveform(
        wav, sr, target_rate, name=str(path), max_seconds=max_seconds, truncate=truncate,
        min_samples=min_samples, notes=notes,
    )
