"""Audio checks and conversion: every clip goes through :func:`prepare_waveform` before a model.

Nothing here guesses silently: resampling and mixdown emit an :class:`AudioNote` warning, while empty, NaN,
infinite or too-long clips raise :class:`AudioError` naming the clip.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch


class AudioError(ValueError):
    """A clip that cannot be used as it is (empty, NaN, infinite, unreadable, too long)."""


class AudioNote(UserWarning):
    """A conversion applied to a clip (resampling, mixdown, truncation); filter it if expected."""


def prepare_waveform(
    wav: np.ndarray | torch.Tensor,
    sampling_rate: int,
    target_rate: int,
    *,
    name: str = "clip",
    max_seconds: float | None = None,
    truncate: bool = False,
) -> np.ndarray:
    """Return ``wav`` as mono float32 at ``target_rate``, or raise :class:`AudioError`.

    ``wav`` is ``(samples,)`` or ``(samples, channels)`` (soundfile's layout; a leading
    channel axis of 1 or 2 is also accepted). Clips longer than ``max_seconds`` raise unless
    ``truncate=True``, in which case they are cut (with an :class:`AudioNote`).

    Example:
        >>> x = prepare_waveform(np.zeros((44100, 2)) + 0.1, 44100, 16000)
        >>> x.shape, x.dtype
        ((16000,), dtype('float32'))
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav)
    if not np.issubdtype(wav.dtype, np.number):
        raise AudioError(f"{name}: audio must be numeric, got dtype {wav.dtype}")
    if wav.ndim == 2:
        # soundfile gives (samples, channels); a torch-style (channels, samples) has few rows.
        if wav.shape[0] <= 8 < wav.shape[1]:
            wav = wav.T
        if wav.shape[1] > 1:
            warnings.warn(f"{name}: mixing {wav.shape[1]} channels down to mono", AudioNote, stacklevel=2)
        wav = wav.mean(axis=1)
    elif wav.ndim != 1:
        raise AudioError(f"{name}: expected 1-D or 2-D audio, got shape {wav.shape}")
    if wav.size == 0:
        raise AudioError(f"{name}: the clip is empty")
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav / float(np.iinfo(wav.dtype).max)
    wav = wav.astype(np.float32)
    if np.isnan(wav).any():
        raise AudioError(f"{name}: the clip contains NaN samples")
    if np.isinf(wav).any():
        raise AudioError(f"{name}: the clip contains infinite samples")
    if sampling_rate <= 0:
        raise AudioError(f"{name}: sampling rate must be positive, got {sampling_rate}")
    if sampling_rate != target_rate:
        from scipy.signal import resample_poly

        warnings.warn(f"{name}: resampling {sampling_rate} Hz -> {target_rate} Hz", AudioNote, stacklevel=2)
        ratio = Fraction(target_rate, sampling_rate)
        wav = resample_poly(wav, ratio.numerator, ratio.denominator).astype(np.float32)
    if max_seconds is not None and len(wav) > max_seconds * target_rate:
        seconds = len(wav) / target_rate
        if not truncate:
            raise AudioError(
                f"{name}: {seconds:.2f} s is longer than the model accepts ({max_seconds:g} s); "
                "pass truncate=True to cut it explicitly"
            )
        warnings.warn(f"{name}: truncating {seconds:.2f} s to {max_seconds:g} s", AudioNote, stacklevel=2)
        wav = wav[: int(max_seconds * target_rate)]
    return wav


def load_audio(
    path: str | Path,
    target_rate: int,
    *,
    max_seconds: float | None = None,
    truncate: bool = False,
) -> np.ndarray:
    """Read ``path`` with soundfile and pass it through :func:`prepare_waveform`.

    Example:
        >>> import soundfile as sf, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(p, np.full(8000, 0.1, dtype=np.float32), 8000)
        >>> load_audio(p, 16000).shape
        (16000,)
    """
    import soundfile as sf

    path = Path(path)
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises several types; the message names the file
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    return prepare_waveform(
        wav, sr, target_rate, name=str(path), max_seconds=max_seconds, truncate=truncate
    )
