"""Samples and attribute data sets, plus the label/file checks every loader shares.

A loader turns its source into ``Entry`` rows (id, raw label, path or array) and hands them to
:func:`build_dataset`, which normalises label spelling, checks that files exist and reports every
problem at once, so each source gets the same rules and the same error messages.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np

from audiolens.audio import AudioError, load_audio, prepare_waveform
from audiolens.tasks import Task

OnProblem = Literal["raise", "skip"]


class DataError(ValueError):
    """A data set that cannot be loaded as asked (missing files, unknown labels, bad layout)."""


class DataWarning(UserWarning):
    """Rows were dropped because ``on_missing="skip"`` or ``on_unknown="skip"`` was asked."""


@dataclass
class Sample:
    """One labelled clip: either a file (``path``) or an in-memory array (``audio`` + rate).

    Example:
        >>> s = Sample("a", "male", audio=np.full(8000, 0.1), sampling_rate=8000)
        >>> s.load(16000).shape
        (16000,)
    """

    id: str
    label: str
    path: Path | None = None
    audio: np.ndarray | None = None
    sampling_rate: int | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.audio is None):
            raise ValueError(f"sample {self.id!r}: give exactly one of path= or audio=")
        if self.path is not None:
            self.path = Path(self.path)
        if self.audio is not None and self.sampling_rate is None:
            raise ValueError(f"sample {self.id!r}: in-memory audio needs sampling_rate=")

    def load(
        self, target_rate: int, *, max_seconds: float | None = None, truncate: bool = False
    ) -> np.ndarray:
        """The clip as mono float32 at ``target_rate``; :class:`AudioError` names the clip."""
        if self.path is not None:
            return load_audio(self.path, target_rate, max_seconds=max_seconds, truncate=truncate)
        assert self.audio is not None and self.sampling_rate is not None
        return prepare_waveform(
            self.audio,
            int(self.sampling_rate),
            target_rate,
            name=self.id,
            max_seconds=max_seconds,
            truncate=truncate,
        )


@dataclass
class AttributeDataset:
    """Samples of one task; every label must belong to ``task.labels``.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> z = np.zeros(160, dtype=np.float32)
        >>> ds = AttributeDataset(
        ...     sakura_task("gender"),
        ...     [Sample(str(i), lab, audio=z, sampling_rate=16000)
        ...      for i, lab in enumerate(["male", "female"] * 5)],
        ...     name="toy",
        ... )
        >>> len(ds), ds.targets[:4].tolist()
        (10, [0, 1, 0, 1])
        >>> probe, test = ds.split(4, seed=0)
        >>> len(probe), len(test), ds.counts()
        (4, 6, {'male': 5, 'female': 5})
    """

    task: Task
    samples: list[Sample]
    name: str

    def __post_init__(self) -> None:
        self.samples = list(self.samples)
        bad = sorted({s.label for s in self.samples if s.label not in self.task.labels})
        if bad:
            raise DataError(
                f"{self.name}: labels {bad} are not in task {self.task.name!r} "
                f"(expected one of {list(self.task.labels)})"
            )
        dup = sorted(k for k, c in Counter(s.id for s in self.samples).items() if c > 1)
        if dup:
            raise DataError(f"{self.name}: duplicate sample ids {dup}")

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, key: int) -> Sample: ...
    @overload
    def __getitem__(self, key: slice) -> AttributeDataset: ...

    def __getitem__(self, key: int | slice) -> Sample | AttributeDataset:
        if isinstance(key, slice):
            return AttributeDataset(self.task, self.samples[key], self.name)
        return self.samples[key]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return f"AttributeDataset(name={self.name!r}, task={self.task.name!r}, n={len(self)})"

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.samples]

    @property
    def targets(self) -> np.ndarray:
        """Label indices into ``task.labels`` (int64, one per sample)."""
        return np.array([self.task.label_index(s.label) for s in self.samples], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Number of samples per label, in ``task.labels`` order (zeros included)."""
        out = dict.fromkeys(self.task.labels, 0)
        for s in self.samples:
            out[s.label] += 1
        return out

    def subset(self, indices: Sequence[int] | np.ndarray) -> AttributeDataset:
        """The samples at ``indices`` (ints or a boolean mask), in the order given."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {idx.shape} for {len(self)} samples")
            idx = np.flatnonzero(idx)
        return AttributeDataset(self.task, [self.samples[int(i)] for i in idx], self.name)

    def split(
        self, n_probe: int, seed: int = 0, *, stratify: bool = True
    ) -> tuple[AttributeDataset, AttributeDataset]:
        """Deterministic disjoint (probe, test) split, e.g. the paper's 100/400.

        With ``stratify`` the probe part keeps the label proportions (largest remainder
        rounding). Both parts keep the original sample order.
        """
        n = len(self)
        if not 0 < n_probe < n:
            raise ValueError(f"n_probe must be in 1..{n - 1} for {n} samples, got {n_probe}")
        rng = np.random.default_rng(seed)
        if not stratify:
            probe = rng.permutation(n)[:n_probe]
        else:
            targets = self.targets
            groups = [np.flatnonzero(targets == k) for k in range(len(self.task.labels))]
            quota = np.array([len(g) for g in groups], dtype=float) * n_probe / n
            take = np.floor(quota).astype(int)
            # Hand the leftover slots to the largest remainders (ties: label order).
            for k in np.argsort(-(quota - take), kind="stable")[: n_probe - take.sum()]:
                take[k] += 1
            probe = np.concatenate([rng.permutation(g)[:t] for g, t in zip(groups, take)])
        mask = np.zeros(n, dtype=bool)
        mask[probe] = True
        return self.subset(mask), self.subset(~mask)


# --------------------------------------------------------------------------- shared loader rules


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def normalize_label(
    raw: object, task: Task, aliases: Mapping[str, str] | None = None
) -> str | None:
    """Map a raw label onto ``task.labels`` ignoring case and stray spaces; ``None`` if unknown.

    ``aliases`` maps extra spellings (compared the same way) to task labels.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> normalize_label(" Female", sakura_task("gender"))
        'female'
        >>> normalize_label("english", sakura_task("language"))
        'English'
        >>> normalize_label("mandarin", sakura_task("language"), {"Mandarin": "Chinese"})
        'Chinese'
    """
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    table = {_key(lab): lab for lab in task.labels}
    for alias, lab in (aliases or {}).items():
        if lab not in task.labels:
            raise ValueError(f"alias {alias!r} -> {lab!r}: not a label of task {task.name!r}")
        table[_key(alias)] = lab
    return table.get(_key(str(raw)))


@dataclass
class Entry:
    """A row as a loader read it, before checks: ``path`` or ``audio`` plus the raw label."""

    id: str
    raw_label: object
    path: Path | None = None
    audio: np.ndarray | None = None
    sampling_rate: int | None = None
    where: str = ""  # e.g. "row 7" for messages


def _check_on(value: str, name: str) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"{name} must be 'raise' or 'skip', got {value!r}")


def _listing(items: list[str], limit: int = 50) -> str:
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"


def build_dataset(
    entries: Iterable[Entry],
    task: Task,
    name: str,
    *,
    on_missing: OnProblem = "raise",
    on_unknown: OnProblem = "raise",
    aliases: Mapping[str, str] | None = None,
) -> AttributeDataset:
    """Check ``entries`` and build the data set; report all problems at once.

    Missing files and labels outside ``task.labels`` raise :class:`DataError` listing every
    offending row; with ``"skip"`` those rows are dropped and a :class:`DataWarning` says how many
    and which.
    """
    _check_on(on_missing, "on_missing")
    _check_on(on_unknown, "on_unknown")
    samples: list[Sample] = []
    missing: list[str] = []
    unknown: list[str] = []
    for e in entries:
        label = normalize_label(e.raw_label, task, aliases)
        bad = False
        if e.path is not None and not Path(e.path).is_file():
            missing.append(f"{e.where + ': ' if e.where else ''}{e.path}")
            bad = True
        if label is None:
            unknown.append(f"{e.where + ': ' if e.where else ''}{e.id} has label {e.raw_label!r}")
            bad = True
        if not bad:
            assert label is not None
            samples.append(Sample(e.id, label, e.path, e.audio, e.sampling_rate))

    errors, skipped = [], []
    for kind, items, mode in (
        ("missing audio file(s)", missing, on_missing),
        (f"label(s) not in {list(task.labels)}", unknown, on_unknown),
    ):
        if items:
            (errors if mode == "raise" else skipped).append(
                f"{len(items)} {kind}:{_listing(items)}"
            )
    if skipped:
        warnings.warn(f"{name}: skipped " + "\n".join(skipped), DataWarning, stacklevel=3)
    if errors:
        hint = "pass on_missing='skip' / on_unknown='skip' to drop these rows with a warning"
        raise DataError(f"{name}: " + "\n".join(errors) + f"\n({hint})")
    if not samples:
        raise DataError(f"{name}: no usable samples")
    return AttributeDataset(task, samples, name)


__all__ = [
    "AttributeDataset",
    "AudioError",
    "DataError",
    "DataWarning",
    "Entry",
    "Sample",
    "build_dataset",
    "normalize_label",
]
