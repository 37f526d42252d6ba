"""Checks for public parameters where they enter: one rule per kind of value, one message style.

Every check raises :class:`~audiolens.errors.ParameterError` (a ``ValueError`` and a
``TypeError``) naming the parameter, what it got and what it accepts. Booleans are never
numbers here (``True`` is not a layer), and a whole number may be given as ``2.0`` but not as
``2.5``.

Example:
    >>> whole_number(3.0, "window", low=1)
    3
    >>> layer_numbers([1, 2.0], "AudioMask layers")
    [1, 2]
    >>> layer_numbers([2.5], "AudioMask layers")
    Traceback (most recent call last):
    ...
    audiolens.errors.ParameterError: AudioMask layers must be whole layer numbers, got 2.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ParameterError


def _scalar(value: Any) -> Any:
    """A 0-d array or tensor as its Python value; anything else as it is."""
    if hasattr(value, "ndim") and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def is_number(value: Any) -> bool:
    """A real number that is not a boolean."""
    value = _scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _whole(v: Any) -> bool:
    if not is_number(v):
        return False
    if isinstance(v, numbers.Integral):
        return True
    f = float(v)
    return math.isfinite(f) and f.is_integer()


def whole_number(value: Any, what: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` within ``low..high`` (inclusive; None: unbounded)."""
    v = _scalar(value)
    if not _whole(v):
        raise ParameterError(f"{what} must be a whole number, got {value!r}")
    out = int(v)
    _bounds(out, what, low, high)
    return out


def finite_number(value: Any, what: str, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False) -> float:
    """``value`` as a finite ``float`` within ``low..high`` (``low_open``: strictly above low)."""
    v = _scalar(value)
    if not is_number(v) or not math.isfinite(float(v)):
        raise ParameterError(f"{what} must be a finite number, got {value!r}")
    out = float(v)
    if low_open and low is not None and out <= low:
        raise ParameterError(f"{what} must be greater than {low:g}, got {value!r}")
    _bounds(out, what, None if low_open else low, high)
    return out


def _bounds(value: float, what: str, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{'-inf' if low is None else f'{low:g}'}..{'inf' if high is None else f'{high:g}'}"
        raise ParameterError(f"{what} {value!r} is outside {span}")


def layer_numbers(values: Iterable[Any] | Any, what: str, *, low: int | None = None,
                  high: int | None = None) -> list[int]:
    """Whole layer numbers (an int, or an iterable of them) within ``low..high``; none may be
    fractional or boolean, and an empty list is refused."""
    if isinstance(values, (str, bytes)):
        raise ParameterError(f"{what} must be whole layer numbers, got {values!r}")
    if is_number(values):
        values = [values]
    try:
        items = list(values)
    except TypeError:
        raise ParameterError(f"{what} must be whole layer numbers, got {values!r}") from None
    if not items:
        raise ParameterError(f"{what} must name at least one layer, got {values!r}")
    out = []
    for x in items:
        v = _scalar(x)
        if not _whole(v):
            raise ParameterError(f"{what} must be whole layer numbers, got {x!r}")
        out.append(int(v))
    bad = [x for x in out if (low is not None and x < low) or (high is not None and x > high)]
    if bad:
        span = f"{low}..{high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise ParameterError(f"{what}: layers {bad} are outside {span}")
    return out
