"""The on-disk record format of a study: JSON Lines per (model, attribute, prompt, intervention).

Layout under a study's output folder (``docs/reproduce.md`` describes every field)::

    out/records/{model}/meta.json                               what the records mean
    out/records/{model}/{attribute}/{prompt}.{intervention}.jsonl   one line per sample
    out/records/{model}/{attribute}/shards/{prompt}.{intervention}.rank{r}.jsonl
                                                    rank r's lines while a data-parallel run goes
    out/records/{model}/{attribute}/enrich.{prompt}.jsonl            one line per (λ, method, seed)
    out/records/{model}/{attribute}/enrich.{prompt}.json             the probe/test split and ℓ̄
    out/records/{model}/{attribute}/probes.{positions}.{table,predictions}.csv, .json
                                                    layer-wise probes: table, per-fold predictions, setup
    out/records/{model}/{attribute}/encoder_lens.{prompt}.csv, .json
                                                    encoder lens: label logits per clip and encoder layer, setup
    out/records/{model}/.lock                                    held by the run writing them

A sample line holds the id, label, target index, the model's prediction and the label logits at
every layer 0..L for each position read. Lines are appended and flushed batch by batch, so a
killed run leaves at most one truncated line per file, which :func:`repair` cuts before appending
again. Each writing process has a file of its own (the main file, or its rank's shard), one run
at a time holds a model's :meth:`RecordStore.lock`, and :meth:`RecordStore.consolidate` merges
shards into the main file; every file rewritten in place goes through :func:`write_atomic`.

Reading checks what it reads: duplicated ids raise :class:`RecordError` (a row is never counted
twice), and so does a line that does not fit ``meta.json`` (an id outside the data set, a target
outside the label range, logits of another depth), naming file and line; truncated lines and
records missing from a data set raise a :class:`RecordWarning`, each naming its file. Records
come back sorted by id, so no statistic depends on which file, rank or line held them. Records turn back into :class:`~audiolens.lenses.result.LensResult` objects with
:func:`to_result`, so every analysis runs on them exactly as on a live lens run, with no model.

Example:
    >>> store = RecordStore("results")                                 # doctest: +SKIP
    >>> res = store.result("tiny-qwen2-audio", "gender", "P3", "none")  # doctest: +SKIP
    >>> res.info_scores("last"), res.critical_layer()                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import (
    FolderBusy as FolderBusy,
)
from ..errors import (
    RecordError as RecordError,
)
from ..errors import (
    RecordWarning as RecordWarning,
)
from ..files import replacing as replacing
from ..files import write_atomic
from ..lenses.result import LensResult

FORMAT_VERSION = 1
SHARDS = "shards"  # the sub-folder of an attribute that holds per-rank record files


def safe_name(name: str) -> str:
    """A model name usable as one folder name ("Qwen/Qwen2-Audio" -> "Qwen__Qwen2-Audio").

    Example:
        >>> safe_name("Qwen/Qwen2-Audio-7B-Instruct")
        'Qwen__Qwen2-Audio-7B-Instruct'
    """
    name = str(name).strip().replace("/", "__")
    name = re.sub(r"[^A-Za-z0-9._+=-]", "_", name)
    if not name or name in (".", ".."):
        raise ValueError(f"{name!r} cannot name a record folder")
    return name


@dataclass(frozen=True)
class RecordKey:
    """Which run a record file holds.

    Example:
        >>> key = RecordKey("m", "gender", "P3", "none")
        >>> key.path("out").as_posix()
        'out/records/m/gender/P3.none.jsonl'
        >>> key.shard_path("out", rank=1).as_posix()
        'out/records/m/gender/shards/P3.none.rank1.jsonl'
    """

    model: str
    attribute: str
    prompt: str
    intervention: str

    def __post_init__(self) -> None:
        for part in (self.attribute, self.prompt, self.intervention):
            if safe_name(part) != part or "." in part:
                raise ValueError(f"{part!r}: record names may hold letters, digits, '_', '-' only")

    def _folder(self, out: str | Path) -> Path:
        return Path(out) / "records" / safe_name(self.model) / self.attribute

    def path(self, out: str | Path) -> Path:
        """The main record file (what a one-process run writes and a merge produces)."""
        return self._folder(out) / f"{self.prompt}.{self.intervention}.jsonl"

    def shard_path(self, out: str | Path, rank: int) -> Path:
        """Rank ``rank``'s file during a data-parallel run."""
        return (
            self._folder(out) / SHARDS / f"{self.prompt}.{self.intervention}.rank{int(rank)}.jsonl"
        )

    def shard_paths(self, out: str | Path) -> list[Path]:
        """The shard files on disk, in rank order."""
        found = self._folder(out).glob(f"{SHARDS}/{self.prompt}.{self.intervention}.rank*.jsonl")
        ranked = []
        for p in found:
            rank = p.name.rsplit(".rank", 1)[1].removesuffix(".jsonl")
            if rank.isdigit():
                ranked.append((int(rank), p))
        return [p for _, p in sorted(ranked)]

    def files(self, out: str | Path) -> list[Path]:
        """Every file holding records of this key: the main file, then the shards."""
        main = self.path(out)
        return ([main] if main.is_file() else []) + self.shard_paths(out)


# --------------------------------------------------------------------------- files


def truncated_tail(path: str | Path) -> int:
    """Bytes after the last newline of ``path``: a line cut short by a kill (0 when none)."""
    path = Path(path)
    if not path.is_file():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as fh:
        # Lines are short next to this window only when they are; read back until a newline.
        step, end = 1 << 16, size
        while end > 0:
            start = max(0, end - step)
            fh.seek(start)
            chunk = fh.read(end - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                return size - (start + k + 1)
            end = start
    return size


# --------------------------------------------------------------------------- lines


def _floats(x: np.ndarray) -> list:
    # float32 -> the shortest decimal that reads back to the same float32: exact and compact.
    return (
        [_floats(row) for row in x] if x.ndim > 1 else [float(str(v)) for v in x.astype(np.float32)]
    )


def sample_records(result: LensResult) -> list[dict[str, Any]]:
    """One dict per sample of ``result``: id, label, target, prediction, per-position logits.

    ``prediction`` is the model's own choice among the labels: the argmax at the last layer and
    the last token (so ``prediction == target`` exactly when the sample counts as correct).
    """
    targets = result._targets().tolist()
    preds = result.predictions("last").tolist()
    logits = result.label_logits.numpy()  # (L+1, batch, pos, labels)
    out = []
    for i, sample_id in enumerate(result.ids):
        out.append(
            {
                "id": sample_id,
                "label": result.labels[targets[i]],
                "target": int(targets[i]),
                "prediction": int(preds[i]),
                "logits": {p: _floats(logits[:, i, k]) for k, p in enumerate(result.positions)},
            }
        )
    return out


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines and flush them to disk before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(_line(rec) for rec in records)
        fh.flush()
        os.fsync(fh.fileno())


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Replace ``path`` with exactly ``records``, atomically (see :func:`write_atomic`)."""
    return write_atomic(path, "".join(_line(rec) for rec in records))


def repair(path: str | Path) -> int:
    """Cut a truncated last line (left by a killed run); return how many bytes were cut."""
    path = Path(path)
    cut = truncated_tail(path)
    if cut:
        with open(path, "r+b") as fh:
            fh.truncate(path.stat().st_size - cut)  # one truncate: no state in between
    return cut


def read_lines(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The complete lines of a record file with their line numbers (from 1). A truncated last
    line is ignored; a line elsewhere that is not a JSON object raises :class:`RecordError`
    naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    # Anything after the last newline is a line cut short by a kill: not a record yet.
    complete = data.split(b"\n")[:-1]
    out = []
    for n, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise RecordError(f"{path}:{n}: not a JSON record (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{n}: not a JSON record ({exc.msg})") from None
        if not isinstance(record, dict):
            raise RecordError(
                f"{path}:{n}: not a record (a JSON object expected, got {type(record).__name__})"
            )
        out.append((n, record))
    return out


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The complete lines of a record file (a truncated last line is ignored; a bad line
    elsewhere raises :class:`RecordError` naming it)."""
    return [r for _, r in read_lines(path)]


def done_ids(path: str | Path) -> set[str]:
    """Ids of the samples already recorded in ``path``."""
    return {str(r["id"]) for r in read_records(path)}


def duplicated(ids: Iterable[Any]) -> list[Any]:
    """The values that occur more than once in ``ids``, in order of their second occurrence.

    Example:
        >>> duplicated(["a", "b", "a", "c", "b", "a"])
        ['a', 'b']
    """
    seen: set[Any] = set()
    twice: dict[Any, None] = {}
    for i in ids:
        if i in seen:
            twice.setdefault(i, None)
        seen.add(i)
    return list(twice)


def to_result(
    records: Sequence[dict[str, Any]],
    labels: Sequence[str],
    positions: Sequence[str],
    label_token_ids: Sequence[int] = (),
) -> LensResult:
    """Sample records back into a :class:`LensResult` (same order as ``records``)."""
    if not records:
        raise RecordError("no records to build a result from")
    try:
        logits = np.array(
            [[r["logits"][p] for p in positions] for r in records], dtype=np.float32
        )  # (batch, pos, L+1, labels)
    except KeyError as exc:
        raise RecordError(
            f"records lack position {exc}; they have {sorted(records[0]['logits'])}"
        ) from None
    return LensResult(
        label_logits=torch.from_numpy(logits.transpose(2, 0, 1, 3).copy()),
        targets=torch.tensor([int(r["target"]) for r in records], dtype=torch.long),
        labels=tuple(labels),
        positions=tuple(positions),
        label_token_ids=tuple(label_token_ids) or tuple(range(len(labels))),
        ids=[str(r["id"]) for r in records],
    )


META_FIELDS = ("format", "model", "n_layers", "positions", "attributes")


def load_meta(path: str | Path) -> dict[str, Any]:
    """A model's ``meta.json``, checked: a file that is not JSON, or not a study's metadata
    (a field missing or of the wrong kind, another format version), raises
    :class:`RecordError` naming it."""
    path = Path(path)
    fix = "delete the folder (or move it away) and run the study again, or use another output folder"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not a study's meta.json (not UTF-8 text); {fix}") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not a study's meta.json ({exc.msg} at line {exc.lineno}); {fix}") from None
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict):
        raise RecordError(f"{path}: not a study's meta.json (a JSON object expected); {fix}")
    missing = [f for f in META_FIELDS if f not in meta]
    if missing:
        raise RecordError(f"{path}: not a study's meta.json (no {', '.join(missing)}); {fix}")
    if meta["format"] != FORMAT_VERSION:
        raise RecordError(f"{path}: record format {meta['format']!r} is not {FORMAT_VERSION}; {fix}")
    attrs = meta["attributes"]
    wrong = (
        "model" if not isinstance(meta["model"], str) or not meta["model"]
        else "n_layers" if not _is_int(meta["n_layers"]) or meta["n_layers"] < 1
        else "positions" if not isinstance(meta["positions"], list)
        or not all(isinstance(x, str) for x in meta["positions"])
        else "attributes" if not isinstance(attrs, dict)
        or not all(isinstance(v, dict) and isinstance(v.get("labels"), list) for v in attrs.values())
        else None
    )
    if wrong:
        raise RecordError(f"{path}: not a study's meta.json ({wrong} is {meta[wrong]!r}); {fix}")
    return meta


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_sample(
    where: str, record: dict[str, Any], labels: Sequence[str], n_layers: int,
    positions: Sequence[str],
) -> None:
    """Raise :class:`RecordError` (prefixed with ``where``, "file:line") unless ``record`` is a
    sample record of a model with ``n_layers`` layers over ``labels``: an integer target in the
    label range matching its label, a prediction in that range, and logits of shape
    (n_layers + 1, len(labels)) at each of ``positions``."""
    fix = "delete this line (or the file, to recompute it)"
    missing = [f for f in ("id", "target", "logits") if f not in record]
    if missing:
        raise RecordError(f"{where}: a sample record without {', '.join(missing)}; {fix}")
    target = record["target"]
    if not _is_int(target) or not 0 <= target < len(labels):
        raise RecordError(
            f"{where}: target {target!r} is not a label index 0..{len(labels) - 1} "
            f"({', '.join(map(str, labels))}); {fix}"
        )
    if "label" in record and record["label"] != labels[target]:
        raise RecordError(
            f"{where}: label {record['label']!r} does not match target {target} "
            f"({labels[target]!r}); {fix}"
        )
    pred = record.get("prediction", 0)
    if not _is_int(pred) or not 0 <= pred < len(labels):
        raise RecordError(f"{where}: prediction {pred!r} is not a label index 0..{len(labels) - 1}; {fix}")
    logits = record["logits"]
    if not isinstance(logits, dict):
        raise RecordError(f"{where}: logits must map positions to arrays; {fix}")
    want = (n_layers + 1, len(labels))
    for pos in positions:
        if pos not in logits:
            raise RecordError(f"{where}: no logits at position {pos!r} (has {sorted(logits)}); {fix}")
        shape: tuple[int, ...] | str
        try:
            shape = np.asarray(logits[pos], dtype=np.float32).shape
        except (TypeError, ValueError):
            shape = "ragged or not numbers"
        if shape != want:
            raise RecordError(
                f"{where}: logits at {pos!r} are {shape}; a model of {n_layers} layers and "
                f"{len(labels)} labels has {want} (layers 0..{n_layers} x labels); {fix}"
            )


def _examples(items: Sequence[Any], n: int = 3) -> str:
    shown = ", ".join(map(str, items[:n]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


# --------------------------------------------------------------------------- the lock


class FolderLock:
    """An exclusive lock on one model's records, held by one run at a time.

    The lock is the operating system's (``flock``) on ``{model}/.lock``, so it is released when
    its process ends, however it ends; ``{model}/.lock.holder.json`` says who holds it
    (pid, host, since) for the message a second run gets. Both files go when the lock is
    released. Use :meth:`RecordStore.lock`.
    """

    # A reader that probes the lock holds it for microseconds: a writer retries this long
    # before it calls the folder busy.
    GRACE_S = 1.0

    def __init__(self, path: Path, wait: float = 0.0, about: dict[str, Any] | None = None):
        self.path = Path(path)
        self.holder_path = self.path.with_name(self.path.name + ".holder.json")
        self.wait = float(wait)
        self.about = dict(about or {})
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock, waiting up to ``wait`` seconds; else raise :class:`FolderBusy`."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + max(self.wait, self.GRACE_S)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise FolderBusy(
                        f"folder busy: another run ({self.holder()}) holds {self.path}; wait "
                        "for it to finish (Study.run(wait=seconds), --wait SECONDS) or write to "
                        "another output folder"
                    ) from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
            # The holder before us deletes the file on release: a lock on a file no longer at
            # ``path`` guards nothing, so open the current one again.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        self._fd = fd
        about = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        write_atomic(self.holder_path, json.dumps({**about, **self.about}) + "\n")
        return self

    def release(self) -> None:
        """Release the lock and delete its files (a finished run leaves none behind)."""
        import fcntl

        if self._fd is None:
            return
        # Deleted while still held: whoever opened the old file re-checks it (see acquire).
        self.holder_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def holder(self) -> str:
        """Who holds the lock, in words ("pid 123 on host-a")."""
        try:
            about = json.loads(self.holder_path.read_text())
            return f"pid {about['pid']} on {about['host']}"
        except (OSError, ValueError, KeyError):
            return "pid unknown"

    def held_elsewhere(self) -> bool:
        """Whether another run holds the lock now (probed without waiting)."""
        import fcntl

        if self._fd is not None or not self.path.is_file():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's shared lock
        return False

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


# --------------------------------------------------------------------------- the store


@dataclass
class Consolidation:
    """What :meth:`RecordStore.consolidate` found and did to one key's files."""

    found: int = 0  # distinct records on disk
    merged: int = 0  # shard files merged into the main file
    dropped: int = 0  # duplicated records dropped
    cut: int = 0  # bytes of truncated lines cut

    def __add__(self, other: Consolidation) -> Consolidation:
        return Consolidation(
            self.found + other.found,
            self.merged + other.merged,
            self.dropped + other.dropped,
            self.cut + other.cut,
        )


class RecordStore:
    """Reads (and writes the metadata of) the records under one output folder.

    ``meta.json`` per model holds ``format``, ``model``, ``n_layers``, ``positions`` and per
    attribute its ``labels``, ``label_token_ids`` and ``ids`` (the samples a complete run holds);
    record lines then need no repetition.
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)

    @property
    def root(self) -> Path:
        return self.out / "records"

    def meta_path(self, model: str) -> Path:
        return self.root / safe_name(model) / "meta.json"

    def models(self) -> list[str]:
        """Model names with records, in folder order (each ``meta.json`` checked)."""
        if not self.root.is_dir():
            return []
        return [load_meta(p)["model"] for p in sorted(self.root.glob("*/meta.json"))]

    def meta(self, model: str) -> dict[str, Any]:
        """``model``'s checked ``meta.json`` (see :func:`load_meta`). A folder that holds
        another model's records (two names that map to one folder name) raises
        :class:`RecordError`: the records of distinct models never mix."""
        path = self.meta_path(model)
        if not path.is_file():
            raise RecordError(f"no records for model {model!r} under {self.root} (no {path})")
        meta = load_meta(path)
        _same_model(path, meta["model"], model)
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write ``meta`` for its model, merging attributes with any earlier run's; conflicting
        depth, positions or label sets raise :class:`RecordError` instead of mixing runs, and so
        does a folder that holds another model's records (two model names with one folder
        name, such as ``a/b`` and ``a__b``, or one name for two hub checkpoints: ``checkpoint``
        ``a/m`` and ``b/m``). An attribute's ``ids`` become the union of both
        runs' (earlier ones first)."""
        meta = {"format": FORMAT_VERSION, **meta}
        path = self.meta_path(meta["model"])
        if path.is_file():
            old = load_meta(path)
            _same_model(path, old["model"], meta["model"])
            before, now = old.get("checkpoint"), meta.get("checkpoint")
            if before and now and before != now:
                raise RecordError(
                    f"{path} holds the records of {meta['model']!r} loaded from {before!r}; this "
                    f"run's {meta['model']!r} comes from {now!r}; give it another name "
                    "(Study(model_name=...)) or use another output folder"
                )
            if before and not now:  # a local copy's run keeps what the records came from
                meta = {**meta, "checkpoint": before}
            for field in ("n_layers", "positions"):
                if old.get(field) != meta.get(field):
                    raise RecordError(
                        f"{path} was written for {field}={old.get(field)}, this run has "
                        f"{meta.get(field)}; use another output folder or another model name"
                    )
            merged = dict(old["attributes"])
            for attr, info in meta["attributes"].items():
                before = merged.get(attr)
                if before is None:
                    merged[attr] = info
                    continue
                if {k: v for k, v in before.items() if k != "ids"} != {
                    k: v for k, v in info.items() if k != "ids"
                }:
                    raise RecordError(f"{path}: attribute {attr!r} was recorded with other labels")
                ids = list(before.get("ids", []))
                known = set(ids)
                ids += [i for i in info.get("ids", []) if i not in known]
                merged[attr] = {**info, "ids": ids} if "ids" in info or ids else info
            meta["attributes"] = merged
        write_atomic(path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    def attributes(self, model: str) -> list[str]:
        return list(self.meta(model)["attributes"])

    def record_keys(self, model: str | None = None) -> list[RecordKey]:
        """Every key with records on disk (in a main file or only in shards so far)."""
        keys = []
        for m in [model] if model else self.models():
            folder = self.root / safe_name(m)
            names = {p.relative_to(folder) for p in folder.glob("*/*.jsonl")}
            for p in folder.glob(f"*/{SHARDS}/*.rank*.jsonl"):
                names.add(Path(p.parent.parent.name) / (p.name.rsplit(".rank", 1)[0] + ".jsonl"))
            for name in sorted(names):
                prompt, _, intervention = name.stem.partition(".")
                if prompt != "enrich":
                    keys.append(RecordKey(m, name.parent.name, prompt, intervention))
        return keys

    # ---- writing (one run at a time: hold lock() around these)
    def lock(self, model: str, wait: float = 0.0, **about: Any) -> FolderLock:
        """The lock on ``model``'s records, for a ``with`` block. A second run that finds it
        held waits up to ``wait`` seconds, then raises :class:`FolderBusy` naming the holder
        ("folder busy: another run (pid 123 on host-a) holds out/records/m/.lock"). ``about``
        adds fields to the holder note (e.g. ``world_size``).

        Example:
            >>> with RecordStore(out).lock("tiny"):  # doctest: +SKIP
            ...     ...  # write records of model "tiny"
        """
        return FolderLock(self.root / safe_name(model) / ".lock", wait=wait, about=about)

    def consolidate(self, key: RecordKey, order: Sequence[str] = ()) -> Consolidation:
        """Bring ``key``'s records into one clean main file: cut truncated lines, merge the
        shards of a data-parallel run, drop records whose id was already written (keeping the
        first). Ids in ``order`` come first, in that order. A clean main file is left untouched;
        any rewrite is atomic and happens before the shards are deleted, so a kill at any
        point loses nothing. Only the holder of :meth:`lock` may call this."""
        main, shards = key.path(self.out), key.shard_paths(self.out)
        cut = sum(repair(p) for p in [main, *shards])
        records = [r for p in [main, *shards] for r in read_records(p)]
        kept: dict[str, dict[str, Any]] = {}
        for r in records:
            kept.setdefault(str(r["id"]), r)
        dropped = len(records) - len(kept)
        if shards or dropped:
            rank = {i: k for k, i in enumerate(order)}
            ordered = sorted(kept.values(), key=lambda r: rank.get(str(r["id"]), len(rank)))
            write_records(main, ordered)
            for p in shards:
                p.unlink()
            if shards and not any(shards[0].parent.iterdir()):
                shards[0].parent.rmdir()
        return Consolidation(found=len(kept), merged=len(shards), dropped=dropped, cut=cut)

    def done_ids(self, key: RecordKey) -> set[str]:
        """Ids recorded for ``key`` in any of its files."""
        return {str(r["id"]) for p in key.files(self.out) for r in read_records(p)}

    # ---- reading, checked
    def read(self, key: RecordKey, expected: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``key``'s records from all its files, checked, in canonical order (sorted by id):
        which file or line a record came from never changes a statistic.

        With the model's ``meta.json`` on disk every line is checked against it: its id must be
        one of the attribute's ``ids`` (the study's data set), its target a label index, its
        logits one row per layer 0..L and one column per label (:func:`check_sample`); a line
        that fails raises :class:`RecordError` naming file and line. A duplicated id raises too;
        a truncated line, or ids of ``expected`` (default: the attribute's ``ids``) without a
        record, warn with a :class:`RecordWarning`. Each message names the file."""
        files = key.files(self.out)
        per_file = [(p, read_lines(p)) for p in files]
        meta = self.meta(key.model) if self.meta_path(key.model).is_file() else None
        if meta is not None:
            self._check(key, meta, per_file)
        records = [r for _, lines in per_file for _, r in lines]
        twice = duplicated(str(r["id"]) for r in records)
        if twice:
            where = [
                str(p) for p, lines in per_file if set(twice) & {str(r["id"]) for _, r in lines}
            ]
            raise RecordError(
                f"{' and '.join(where)}: {len(twice)} ids recorded more than once "
                f"({_examples(twice)}), e.g. by two runs writing one folder; run the study again "
                "with this output folder to drop the copies (RecordStore.consolidate), or "
                "delete the file to recompute it"
            )
        for p in files:
            tail = truncated_tail(p)
            if tail:
                self._warn(key, f"{p}: its last line is cut short ({tail} bytes) and is ignored")
        if expected is None and meta is not None:
            expected = meta["attributes"].get(key.attribute, {}).get("ids")
        if expected and records:
            have = {str(r["id"]) for r in records}
            missing = [i for i in expected if i not in have]
            if missing:
                self._warn(
                    key,
                    f"{key.path(self.out)}: {len(missing)} of {len(expected)} samples have no "
                    f"record ({_examples(missing)}); results use the {len(expected) - len(missing)} "
                    "recorded; run the study again to complete them",
                )
        return sorted(records, key=lambda r: str(r["id"]))

    def _check(
        self, key: RecordKey, meta: dict[str, Any],
        per_file: Sequence[tuple[Path, Sequence[tuple[int, dict[str, Any]]]]],
    ) -> None:
        """Every line of ``per_file`` against ``meta`` (see :meth:`read`)."""
        info = meta["attributes"].get(key.attribute)
        if info is None:
            if any(lines for _, lines in per_file):
                raise RecordError(
                    f"{key.path(self.out)}: records of attribute {key.attribute!r}, which "
                    f"{self.meta_path(key.model)} does not describe; delete them or run the "
                    "study on that attribute again"
                )
            return
        known = set(map(str, info["ids"])) if "ids" in info else None
        for path, lines in per_file:
            foreign = []
            for n, r in lines:
                check_sample(f"{path}:{n}", r, info["labels"], meta["n_layers"], meta["positions"])
                if known is not None and str(r["id"]) not in known:
                    foreign.append((n, r["id"]))
            if foreign:
                n = foreign[0][0]
                raise RecordError(
                    f"{path}:{n}: {len(foreign)} records of samples that are not in the study's "
                    f"{key.attribute} data set ({_examples([i for _, i in foreign])}; "
                    f"{self.meta_path(key.model)} lists its ids); delete those lines, or run the "
                    "study with the data set they came from"
                )

    def _warn(self, key: RecordKey, message: str) -> None:
        if self.lock(key.model).held_elsewhere():
            message += f" (a run is writing these records now: {self.lock(key.model).holder()})"
        warnings.warn(message, RecordWarning, stacklevel=3)

    def verify(self, model: str | None = None) -> None:
        """Check every record file of ``model`` (default: all): duplicated ids raise
        :class:`RecordError`; truncated lines, samples without records and incomplete
        enrichment sweeps warn (:class:`RecordWarning`), each naming its file."""
        for m in [model] if model else self.models():
            for key in self.record_keys(m):
                self.read(key)
            for attr, prompt in self.enrichments(m):
                self.enrichment(m, attr, prompt)

    def result(
        self, model: str, attribute: str, prompt: str, intervention: str = "none",
        ids: Sequence[str] | None = None,
    ) -> LensResult:
        """The lens result stored for one key (checked as :meth:`read` says); with ``ids``,
        only those samples, in that order (a missing one raises)."""
        meta = self.meta(model)
        key = RecordKey(model, attribute, prompt, intervention)
        info = meta["attributes"][attribute]
        records = self.read(key, info.get("ids") if ids is None else ids)
        if ids is not None:
            by_id = {str(r["id"]): r for r in records}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise RecordError(f"{key.path(self.out)}: no record of {_examples(missing)}")
            records = [by_id[i] for i in ids]
        if not records:
            raise RecordError(f"no records at {key.path(self.out)}")
        return to_result(
            records, info["labels"], meta["positions"], info.get("label_token_ids", ())
        )

    # ---- layer-wise probes (per attribute: a per-layer table, per-fold predictions, a setup)
    def probe_paths(self, model: str, attribute: str, positions: str) -> tuple[Path, Path, Path]:
        """``(table.csv, predictions.csv, setup.json)`` of the probes of ``attribute`` at
        ``positions``; the setup is written last, so it marks a complete run."""
        folder = self.root / safe_name(model) / attribute
        stem = f"probes.{safe_name(positions)}"
        return folder / f"{stem}.table.csv", folder / f"{stem}.predictions.csv", folder / f"{stem}.json"

    def probe_runs(self, model: str) -> list[tuple[str, str]]:
        """(attribute, positions) pairs with complete probes on disk."""
        folder = self.root / safe_name(model)
        runs = []
        for p in sorted(folder.glob("*/probes.*.json")):
            setup = json.loads(p.read_text())
            runs.append((p.parent.name, str(setup["positions"])))
        return runs

    def probe_setup(self, model: str, attribute: str, positions: str) -> dict[str, Any] | None:
        """The stored setup of a complete probe run, or None."""
        path = self.probe_paths(model, attribute, positions)[2]
        return json.loads(path.read_text()) if path.is_file() else None

    # ---- encoder lens (per attribute: per-clip label logits per encoder layer, and a setup)
    def encoder_lens_paths(self, model: str, attribute: str, prompt: str) -> tuple[Path, Path]:
        """``(logits.csv, setup.json)`` of the encoder lens of ``attribute`` under ``prompt``;
        the setup is written last, so it marks a complete run."""
        folder = self.root / safe_name(model) / attribute
        return folder / f"encoder_lens.{prompt}.csv", folder / f"encoder_lens.{prompt}.json"

    def encoder_lens_runs(self, model: str) -> list[tuple[str, str]]:
        """(attribute, prompt) pairs with a complete encoder lens on disk."""
        folder = self.root / safe_name(model)
        return [(p.parent.name, str(json.loads(p.read_text())["prompt"]))
                for p in sorted(folder.glob("*/encoder_lens.*.json"))]

    def encoder_lens_setup(self, model: str, attribute: str, prompt: str) -> dict[str, Any] | None:
        """The stored setup of a complete encoder-lens run, or None."""
        path = self.encoder_lens_paths(model, attribute, prompt)[1]
        return json.loads(path.read_text()) if path.is_file() else None

        # ---- enrichment (RQ5)
    def enrich_paths(self, model: str, attribute: str, prompt: str) -> tuple[Path, Path]:
        folder = self.root / safe_name(model) / attribute
        return folder / f"enrich.{prompt}.jsonl", folder / f"enrich.{prompt}.json"

    def enrich_shard_path(self, model: str, attribute: str, prompt: str, rank: int) -> Path:
        """Rank ``rank``'s sweep rows during a data-parallel run."""
        rows_path, _ = self.enrich_paths(model, attribute, prompt)
        return rows_path.parent / SHARDS / f"enrich.{prompt}.rank{int(rank)}.jsonl"

    def merge_enrich_shards(self, model: str, attribute: str, prompt: str) -> int:
        """Append the sweep rows of every rank's shard to the sweep's file (a row already there
        is not added again), then delete the shards; returns how many rows were added."""
        rows_path, _ = self.enrich_paths(model, attribute, prompt)
        shards = sorted((rows_path.parent / SHARDS).glob(f"enrich.{prompt}.rank*.jsonl"))
        if not shards:
            return 0
        repair(rows_path)
        have = {_sweep_key(r) for r in read_records(rows_path)}
        added = []
        for shard in shards:
            for r in read_records(shard):  # a cut last line is left out
                if _sweep_key(r) not in have:
                    have.add(_sweep_key(r))
                    added.append(r)
        append_records(rows_path, added)
        for shard in shards:
            shard.unlink()
        if not any(shards[0].parent.iterdir()):
            shards[0].parent.rmdir()
        return len(added)

    def enrichments(self, model: str) -> list[tuple[str, str]]:
        """(attribute, prompt) pairs with an enrichment sweep on disk."""
        folder = self.root / safe_name(model)
        return [
            (p.parent.name, p.stem.partition(".")[2])
            for p in sorted(folder.glob("*/enrich.*.json"))
        ]

    def enrichment(
        self, model: str, attribute: str, prompt: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The sweep's setup (``source_layer``, ``gap``, ``probe_ids``, ...) and its per-clip
        rows (``id``, ``scale``, ``method``, ``seed``, ``layer``, ``prediction``, ``correct``),
        checked like :meth:`read`: a row twice raises, missing rows warn."""
        rows_path, setup_path = self.enrich_paths(model, attribute, prompt)
        if not setup_path.is_file():
            raise RecordError(f"no enrichment sweep at {setup_path}")
        setup = load_json(setup_path, "an enrichment sweep's setup")
        rows = read_records(rows_path)
        if any("id" not in r for r in rows):
            raise RecordError(
                f"{rows_path}: sweep rows without clip ids (an older layout, one row per λ); run "
                "the study again with this output folder to redo the sweep"
            )
        jobs = [_sweep_key(r) for r in rows]
        twice = duplicated(jobs)
        if twice:
            raise RecordError(
                f"{rows_path}: {len(twice)} (id, scale, method, seed) rows recorded more than once "
                f"({_examples(twice)}); run the study again with this output folder to redo them"
            )
        tested = set(map(str, setup.get("test_ids", [])))
        foreign = [r["id"] for r in rows if str(r["id"]) not in tested]
        if foreign:
            raise RecordError(
                f"{rows_path}: {len(foreign)} sweep rows of clips outside the test split "
                f"({_examples(foreign)}; {setup_path} lists it); delete the file to redo the sweep"
            )
        key = RecordKey(model, attribute, prompt, "none")
        tail = truncated_tail(rows_path)
        if tail:
            self._warn(
                key, f"{rows_path}: its last line is cut short ({tail} bytes) and is ignored"
            )
        if setup.get("source_layer") is not None:
            per_clip = len(setup.get("scales", [])) * (1 + int(setup.get("seeds", 0)))
            want = per_clip * len(setup.get("test_ids", []))
            if len(rows) < want:
                self._warn(
                    key,
                    f"{rows_path}: {len(rows)} of {want} sweep rows recorded; run the study "
                    "again to complete them",
                )
        # Canonical order: the statistics of a sweep never depend on who wrote which row first.
        return setup, sorted(rows, key=lambda r: (str(r["id"]), *_sweep_key(r)[1:]))


def load_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object at ``path``, or a :class:`RecordError` naming it as ``what``."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(
            f"{path}: not {what} ({getattr(exc, 'msg', 'not UTF-8 text')}); delete it and run "
            "the study again to redo it"
        ) from None
    if not isinstance(obj, dict):
        raise RecordError(f"{path}: not {what} (a JSON object expected); delete it and run the study again")
    return obj


def _same_model(path: Path, recorded: str, asked: str) -> None:
    if recorded != asked:
        raise RecordError(
            f"{path} holds the records of model {recorded!r}, not {asked!r}: both names map to "
            f"the folder {path.parent.name!r}; give this model another name (Study(model_name=...)) "
            "or use another output folder"
        )


def _sweep_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a sweep row is a row of: (clip id, λ, method, seed)."""
    return (row.get("id"), float(row["scale"]), row["method"], int(row["seed"]))
