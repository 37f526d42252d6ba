"""Samples and attribute data sets, plus the label/file checks every loader shares.

A loader turns its source into ``Entry`` rows (id, raw label, path or array) and hands them to
:func:`build_dataset`, which normalises label spelling, keeps paths inside the data folder, checks
that every clip exists and decodes, and reports every problem at once, so each source gets the
same rules and the same error messages.

Clips of a data set report their conversions (resampling, mixdown, truncation) once per data set
and kind, with a count ("resampling 120 of 500 clips from 8000 Hz to 16000 Hz"), not once per
clip.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, overload

import numpy as np

from audiolens.audio import (
    AudioError,
    AudioNote,
    ClipInfo,
    Conversion,
    array_info,
    file_info,
    load_audio,
    prepare_waveform,
)
from audiolens.tasks import Task

from ..errors import DataError as DataError
from ..errors import DataWarning as DataWarning
from ..errors import warn_user

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Unpack

OnProblem = Literal["raise", "skip"]


class Checks(TypedDict, total=False):
    """What a loader passes on to :func:`build_dataset`: what happens to rows whose file is
    missing (``on_missing``), whose label is unknown (``on_unknown``) or whose audio does not
    decode (``on_unreadable``), each ``"raise"`` or ``"skip"`` and by default ``on_error``; and
    extra label spellings (``aliases``)."""

    on_error: OnProblem
    on_missing: OnProblem | None
    on_unknown: OnProblem | None
    on_unreadable: OnProblem | None
    aliases: Mapping[str, str] | None


@dataclass
class Sample:
    """One labelled clip: either a file (``path``) or an in-memory array (``audio`` + rate).

    ``speaker`` and ``sentence`` are optional metadata (a voice or speaker id, the text spoken);
    :func:`audiolens.analysis.probes.probe_layers` groups its folds by them.

    Example:
        >>> s = Sample("a", "male", audio=np.full(8000, 0.1), sampling_rate=8000)
        >>> s.info()
        ClipInfo(frames=8000, channels=1, sampling_rate=8000)
        >>> s.load(16000).shape
        (16000,)
    """

    id: str
    label: str
    path: Path | None = None
    audio: np.ndarray | None = None
    sampling_rate: int | None = None
    # Who speaks and what is said, when the source says so: probes keep clips of one speaker
    # (or sentence) in one cross-validation fold, or held-out accuracy would be inflated.
    speaker: str | None = None
    sentence: str | None = None
    # Set by the first data set holding the sample: its conversions are reported there, once.
    _notes: _ConversionNotes | None = field(default=None, init=False, repr=False, compare=False)
    _info: ClipInfo | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.audio is None):
            raise ValueError(f"sample {self.id!r}: give exactly one of path= or audio=")
        if self.path is not None:
            self.path = Path(self.path)
        if self.audio is not None and self.sampling_rate is None:
            raise ValueError(f"sample {self.id!r}: in-memory audio needs sampling_rate=")

    def info(self) -> ClipInfo:
        """Frames, channels and rate before conversion (a file's header is read once)."""
        if self._info is None:
            if self.path is not None:
                self._info = file_info(self.path)
            else:
                assert self.audio is not None
                self._info = array_info(self.audio, self.sampling_rate, self.id)
        return self._info

    def load(
        self, target_rate: int, *, max_seconds: float | None = None, truncate: bool = False
    ) -> np.ndarray:
        """The clip as mono float32 at ``target_rate``; :class:`AudioError` names the clip.

        Conversions warn :class:`AudioNote` once per data set and kind (see the module notes);
        a sample outside any data set warns per clip.
        """
        notes: list[Conversion] | None = [] if self._notes is not None else None
        if self.path is not None:
            wav = load_audio(
                self.path, target_rate, max_seconds=max_seconds, truncate=truncate, notes=notes
            )
        else:
            assert self.audio is not None
            wav = prepare_waveform(
                self.audio,
                self.sampling_rate,  # type: ignore[arg-type]
                target_rate,
                name=self.id,
                max_seconds=max_seconds,
                truncate=truncate,
                notes=notes,
            )
        if self._notes is not None and notes:
            self._notes.report(notes)
        return wav


class _ConversionNotes:
    """Warns each kind of conversion once for a whole data set, counting the clips it concerns
    from their headers (so the count is known at the first clip)."""

    def __init__(self, name: str, samples: list[Sample]):
        self.name = name
        self.samples = samples
        self.seen: set[tuple] = set()

    def report(self, conversions: Iterable[Conversion]) -> None:
        for c in conversions:
            if c.key in self.seen:
                continue
            self.seen.add(c.key)
            count = 0
            for s in self.samples:
                try:
                    count += c.applies_to(s.info())
                except AudioError:
                    pass  # an unreadable clip is reported when it is loaded
            warn_user(  # at the user's line, however deep the load was
                f"{self.name}: {c.summary(count, len(self.samples))} (noted once per data set)", AudioNote,
            )


@dataclass
class AttributeDataset:
    """Samples of one task; every label must belong to ``task.labels``.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> z = np.zeros(1600, dtype=np.float32)
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
        # One file under two spellings (./a.wav, a.wav, a link) would count one clip twice.
        by_file: dict[Path, list[str]] = {}
        for s in self.samples:
            if s.path is not None:
                by_file.setdefault(Path(os.path.realpath(s.path)), []).append(s.id)
        twice = {str(p): ids for p, ids in by_file.items() if len(ids) > 1}
        if twice:
            raise DataError(f"{self.name}: one file under several sample ids (each clip once): {twice}")
        # Subsets and splits keep the notes of the data set their samples came from.
        notes = _ConversionNotes(self.name, self.samples)
        for s in self.samples:
            if s._notes is None:
                s._notes = notes

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
    """A row as a loader read it, before checks: ``path`` or ``audio`` plus the raw label.

    ``root`` is the folder ``path`` must stay inside (the folder the metadata's paths are
    relative to); ``error`` is set (a message naming the row) by a loader that could not decode
    the row's audio itself.
    """

    id: str
    raw_label: object
    path: Path | None = None
    audio: np.ndarray | None = None
    sampling_rate: int | None = None
    where: str = ""  # e.g. "row 7" for messages
    root: Path | None = None
    error: str | None = None
    speaker: str | None = None
    sentence: str | None = None


def read_metadata(path: Path) -> pd.DataFrame:
    """A labels CSV as strings, with column names stripped."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def csv_entries(csv_path: Path, root: Path, file_column: str, label_column: str) -> list[Entry]:
    """One :class:`Entry` per row of the labels CSV ``csv_path``: the file column's value is the
    id and the path under ``root``; messages name the row by its line in the file. Optional
    ``speaker`` and ``sentence`` (or ``text``) columns become the samples' metadata."""
    df = read_metadata(csv_path)
    need = [c for c in (file_column, label_column) if c not in df.columns]
    if need:
        raise DataError(f"{csv_path}: missing column(s) {need}; found {list(df.columns)}")
    speakers = _column(df, "speaker")
    sentences = _column(df, "sentence", "text")
    return [
        Entry(
            id=str(f).strip(),
            raw_label=lab,
            path=root / str(f).strip(),
            where=f"row {i + 2}",  # +1 header, +1 one-based: the line number in the file
            root=root,
            speaker=speakers[i],
            sentence=sentences[i],
        )
        for i, (f, lab) in enumerate(zip(df[file_column], df[label_column]))
    ]


def csv_dataset(csv_path: Path, root: Path, file_column: str, label_column: str, task: Task, name: str,
                **checks: Unpack[Checks]) -> AttributeDataset:
    """The data set of a labels CSV whose file column names clips under ``root``: its rows
    (:func:`csv_entries`) checked by :func:`build_dataset`.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> ds = csv_dataset(Path("labels.csv"), Path("clips"), "file", "label",  # doctest: +SKIP
        ...                  sakura_task("gender"), "my clips", on_error="skip")
    """
    return build_dataset(csv_entries(csv_path, root, file_column, label_column), task, name, **checks)


def _column(df, *names: str) -> list[str | None]:
    """The first of ``names`` that ``df`` has, stripped, with empty cells as None (all None when
    it has none of them)."""
    for name in names:
        if name in df.columns:
            return [str(v).strip() or None for v in df[name]]
    return [None] * len(df)


def _check_on(value: str, name: str) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"{name} must be 'raise' or 'skip', got {value!r}")


def _listing(items: list[str], limit: int = 50) -> str:
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"


def existing_folder(path: str | Path) -> Path:
    """``path`` as a Path, or a :class:`DataError` saying it does not exist or is not a folder."""
    path = Path(path)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data folder {path} {state}")
    return path


def leaves_folder(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies outside ``root``, judged on the names alone (``..`` and absolute
    paths), so that links inside a data folder stay allowed.

    Example:
        >>> leaves_folder("data/audio/../../etc/hostname", "data/audio")
        True
        >>> leaves_folder("data/audio/./a.wav", "data/audio")
        False
    """
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))  # lexical, no links
    return rel == os.pardir or rel.startswith(os.pardir + os.sep)


def _check_clip(entry: Entry) -> ClipInfo:
    """The clip's info after a cheap check that it decodes: a file's header, or for an
    in-memory array the conversion a model would apply (kept quiet: nothing is loaded yet)."""
    if entry.path is not None:
        return file_info(entry.path)
    assert entry.audio is not None
    info = array_info(entry.audio, entry.sampling_rate, entry.id)
    prepare_waveform(entry.audio, info.sampling_rate, info.sampling_rate, name=entry.id, notes=[])
    return info


def build_dataset(
    entries: Iterable[Entry],
    task: Task,
    name: str,
    *,
    on_error: OnProblem = "raise",
    on_missing: OnProblem | None = None,
    on_unknown: OnProblem | None = None,
    on_unreadable: OnProblem | None = None,
    aliases: Mapping[str, str] | None = None,
) -> AttributeDataset:
    """Check ``entries`` and build the data set; report all problems at once.

    Every row is checked now, so that a study never stops half-way on a bad clip: its file
    exists (``on_missing``), its label is one of ``task.labels`` (``on_unknown``) and its audio
    decodes, is not empty and not shorter than one analysis window (``on_unreadable``). Each of
    these is ``"raise"`` (a :class:`DataError` listing every offending row) or ``"skip"`` (the
    rows are dropped and one :class:`DataWarning` lists them); unset ones follow ``on_error``.
    A path that leaves its data folder (``../../etc/hostname``, an absolute path) always raises:
    it is never read.
    """
    modes = {
        "missing": on_missing or on_error,
        "unknown": on_unknown or on_error,
        "unreadable": on_unreadable or on_error,
    }
    _check_on(on_error, "on_error")
    for kind, mode in modes.items():
        _check_on(mode, f"on_{kind}")
    samples: list[Sample] = []
    problems: dict[str, list[str]] = {"missing": [], "unknown": [], "unreadable": []}
    outside: list[str] = []
    for e in entries:
        at = f"{e.where}: " if e.where else ""
        if e.path is not None and e.root is not None and leaves_folder(e.path, e.root):
            outside.append(f"{at}{e.path} is not inside {e.root}")
            continue
        label = normalize_label(e.raw_label, task, aliases)
        bad = []
        info = None
        if e.error is not None:
            bad.append(("unreadable", e.error))  # the loader's message names the row
        elif e.path is not None and not Path(e.path).is_file():
            bad.append(("missing", f"{at}{e.path}"))
        else:
            try:
                info = _check_clip(e)
            except AudioError as exc:
                bad.append(("unreadable", f"{at}{exc}"))
        if label is None:
            bad.append(("unknown", f"{at}{e.id} has label {e.raw_label!r}"))
        for kind, text in bad:
            problems[kind].append(text)
        if not bad:
            assert label is not None
            sample = Sample(e.id, label, e.path, e.audio, e.sampling_rate,
                            speaker=e.speaker, sentence=e.sentence)
            sample._info = info
            samples.append(sample)

    if outside:
        raise DataError(
            f"{name}: {len(outside)} path(s) leave the data folder (refused, never read):"
            f"{_listing(outside)}"
        )
    titles = {
        "missing": "missing audio file(s)",
        "unknown": f"label(s) not in {list(task.labels)}",
        "unreadable": "clip(s) that do not decode or are too short",
    }
    errors: list[str] = []
    skipped: list[str] = []
    for kind, items in problems.items():
        if items:
            (errors if modes[kind] == "raise" else skipped).append(
                f"{len(items)} {titles[kind]}:{_listing(items)}"
            )
    if skipped:
        warn_user(f"{name}: skipped " + "\n".join(skipped), DataWarning)
    if errors:
        hint = (
            "pass on_error='skip' to drop these rows with a warning, or on_missing='skip' / "
            "on_unknown='skip' / on_unreadable='skip' for one kind"
        )
        raise DataError(f"{name}: " + "\n".join(errors) + f"\n({hint})")
    if not samples:
        raise DataError(f"{name}: no usable samples")
    return AttributeDataset(task, samples, name)


__all__ = [
    "AttributeDataset",
    "AudioError",
    "Checks",
    "DataError",
    "DataWarning",
    "Entry",
    "Sample",
    "build_dataset",
    "existing_folder",
    "leaves_folder",
    "normalize_label",
]
