"""Adapter for Hugging Face ``datasets`` objects, duck-typed so ``datasets`` stays optional.

Anything iterable over row dicts works: a ``datasets.Dataset``, an ``IterableDataset`` or a plain
list. The audio cell may be a decoded dict (``{"array", "sampling_rate"}``), an undecoded one
(``{"bytes"}`` or ``{"path"}``, from ``Audio(decode=False)``), or a decoder object with
``get_all_samples()`` (newer ``datasets`` releases).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from audiolens.audio import AudioError, check_rate
from audiolens.data.dataset import AttributeDataset, Checks, DataError, Entry, build_dataset
from audiolens.tasks import Task

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _decode(cell: Any, where: str) -> tuple[np.ndarray, int]:
    """(samples, rate) from one audio cell; soundfile's (samples, channels) layout."""
    if hasattr(cell, "get_all_samples"):  # torchcodec AudioDecoder
        s = cell.get_all_samples()
        return s.data.detach().cpu().numpy().T, check_rate(s.sample_rate, where)
    if not isinstance(cell, Mapping):
        raise AudioError(f"{where}: audio cell of type {type(cell).__name__} is not an audio dict")
    if cell.get("array") is not None:
        if cell.get("sampling_rate") is None:
            raise AudioError(f"{where}: audio dict has an array but no sampling_rate")
        return np.asarray(cell["array"]), check_rate(cell["sampling_rate"], where)
    import soundfile as sf

    source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell.get("path")
    if not source:
        raise AudioError(f"{where}: audio dict has none of array, bytes, path")
    try:
        wav, sr = sf.read(source, dtype="float32", always_2d=False)
    except Exception as exc:
        raise AudioError(f"{where}: cannot decode audio ({exc})") from exc
    return wav, check_rate(sr, where)


def from_hf_dataset(
    ds: Iterable[Mapping[str, Any]],
    task: Task,
    audio_column: str = "audio",
    label_column: str = "attribute_label",
    *,
    id_column: str | None = "file",
    name: str | None = None,
    **checks: Unpack[Checks],
) -> AttributeDataset:
    """Rows of a Hugging Face data set (or any iterable of row dicts) as an AttributeDataset.

    Audio is decoded now and kept in memory. Integer labels are turned into names through
    ``ds.features[label_column].int2str`` (a ``ClassLabel``) when the data set has one. The id is
    the ``id_column`` value when rows have it (SAKURA rows carry ``file``), else the row index.
    Rows whose audio does not decode (or is empty, NaN, mis-scaled, too short) and rows with
    unknown labels raise a :class:`DataError` listing all of them, or with ``on_error="skip"``
    (``on_unreadable``, ``on_unknown`` for one kind) are dropped with a :class:`DataWarning`.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> rows = [{"audio": {"array": np.full(800, 0.1), "sampling_rate": 8000}, "label": " Male"}]
        >>> ds = from_hf_dataset(rows, sakura_task("gender"), label_column="label")
        >>> ds[0].label, ds[0].load(16000).shape
        ('male', (1600,))

        With the real library (not a dependency of audiolens)::

            from datasets import load_dataset
            ds = from_hf_dataset(load_dataset("SLLM-multi-hop/GenderQA", split="test"),
                                 sakura_task("gender"))
    """
    features = getattr(ds, "features", None)
    to_name = None
    if features is not None and label_column in features:
        to_name = getattr(features[label_column], "int2str", None)
    entries = []
    for i, row in enumerate(ds):
        where = f"row {i}"
        for col in (audio_column, label_column):
            if col not in row:
                raise DataError(f"{where}: no column {col!r}; found {sorted(row)}")
        raw = row[label_column]
        if to_name is not None and isinstance(raw, (int, np.integer)):
            raw = to_name(int(raw))
        sid = str(row[id_column]) if id_column and row.get(id_column) is not None else str(i)
        try:
            wav, sr = _decode(row[audio_column], f"{where} ({sid})")
        except AudioError as exc:
            entries.append(Entry(id=sid, raw_label=raw, where=where, error=str(exc)))
            continue
        entries.append(Entry(id=sid, raw_label=raw, audio=wav, sampling_rate=sr, where=where))
    return build_dataset(
        entries,
        task,
        name or f"hf:{getattr(getattr(ds, 'info', None), 'dataset_name', None) or task.name}",
        **checks,
    )
