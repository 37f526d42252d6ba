"""The on-disk record format of a study: JSON Lines per (model, attribute, prompt, intervention).

Layout under a study's output folder (``docs/reproduce.md`` describes every field)::

    out/records/{model}/meta.json                               what the records mean
    out/records/{model}/{attribute}/{prompt}.{intervention}.jsonl   one line per sample
    out/records/{model}/{attribute}/enrich.{prompt}.jsonl            one line per (λ, method, seed)
    out/records/{model}/{attribute}/enrich.{prompt}.json             the probe/test split and ℓ̄

A sample line holds the id, label, target index, the model's prediction and the label logits at
every layer 0..L for each position read. Lines are appended and flushed batch by batch, so a
killed run leaves at most one truncated line, which :func:`repair` cuts before appending again.
Records turn back into :class:`~audiolens.lens.LensResult` objects with :func:`to_result`, so
every analysis runs on them exactly as on a live lens run, with no model loaded.

Example:
    >>> store = RecordStore("results")                                 # doctest: +SKIP
    >>> res = store.result("tiny-qwen2-audio", "gender", "P3", "none")  # doctest: +SKIP
    >>> res.info_scores("last"), res.critical_layer()                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .lens import LensResult

FORMAT_VERSION = 1


class RecordError(ValueError):
    """Records that cannot be read or do not fit the study asking for them."""


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
        >>> RecordKey("m", "gender", "P3", "none").path("out").as_posix()
        'out/records/m/gender/P3.none.jsonl'
    """

    model: str
    attribute: str
    prompt: str
    intervention: str

    def __post_init__(self) -> None:
        for part in (self.attribute, self.prompt, self.intervention):
            if safe_name(part) != part or "." in part:
                raise ValueError(f"{part!r}: record names may hold letters, digits, '_', '-' only")

    def path(self, out: str | Path) -> Path:
        return (
            Path(out)
            / "records"
            / safe_name(self.model)
            / self.attribute
            / f"{self.prompt}.{self.intervention}.jsonl"
        )


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


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines and flush them to disk before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(
            json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n" for rec in records
        )
        fh.flush()
        os.fsync(fh.fileno())


def repair(path: str | Path) -> int:
    """Cut a truncated last line (left by a killed run); return how many bytes were cut."""
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # 0 when not even the first line is complete
    if keep == len(data):
        return 0
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The complete lines of a record file (a truncated last line is ignored; a bad line
    elsewhere raises :class:`RecordError` naming it)."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    # Anything after the last newline is a line cut short by a kill: not a record yet.
    complete = lines[:-1]
    out = []
    for n, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}:{n}: not a JSON record ({exc.msg})") from None
    return out


def done_ids(path: str | Path) -> set[str]:
    """Ids of the samples already recorded in ``path``."""
    return {str(r["id"]) for r in read_records(path)}


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


# --------------------------------------------------------------------------- the store


class RecordStore:
    """Reads (and writes the metadata of) the records under one output folder.

    ``meta.json`` per model holds ``format``, ``model``, ``n_layers``, ``positions`` and per
    attribute its ``labels`` and ``label_token_ids``; record lines then need no repetition.
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)

    @property
    def root(self) -> Path:
        return self.out / "records"

    def meta_path(self, model: str) -> Path:
        return self.root / safe_name(model) / "meta.json"

    def models(self) -> list[str]:
        """Model names with records, in name order."""
        if not self.root.is_dir():
            return []
        metas = [json.loads(p.read_text()) for p in sorted(self.root.glob("*/meta.json"))]
        return [m["model"] for m in metas]

    def meta(self, model: str) -> dict[str, Any]:
        path = self.meta_path(model)
        if not path.is_file():
            raise RecordError(f"no records for model {model!r} under {self.root} (no {path})")
        meta = json.loads(path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise RecordError(f"{path}: record format {meta.get('format')} is not {FORMAT_VERSION}")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write ``meta`` for its model, merging attributes with any earlier run's; conflicting
        depth, positions or label sets raise :class:`RecordError` instead of mixing runs."""
        meta = {"format": FORMAT_VERSION, **meta}
        path = self.meta_path(meta["model"])
        if path.is_file():
            old = json.loads(path.read_text())
            for field in ("n_layers", "positions"):
                if old.get(field) != meta.get(field):
                    raise RecordError(
                        f"{path} was written for {field}={old.get(field)}, this run has "
                        f"{meta.get(field)}; use another output folder or another model name"
                    )
            for attr, info in meta["attributes"].items():
                if attr in old["attributes"] and old["attributes"][attr] != info:
                    raise RecordError(f"{path}: attribute {attr!r} was recorded with other labels")
            meta["attributes"] = {**old["attributes"], **meta["attributes"]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    def attributes(self, model: str) -> list[str]:
        return list(self.meta(model)["attributes"])

    def record_keys(self, model: str | None = None) -> list[RecordKey]:
        """Every record file present, as keys."""
        keys = []
        for m in [model] if model else self.models():
            for path in sorted((self.root / safe_name(m)).glob("*/*.jsonl")):
                prompt, _, intervention = path.stem.partition(".")
                if prompt != "enrich":
                    keys.append(RecordKey(m, path.parent.name, prompt, intervention))
        return keys

    def result(
        self, model: str, attribute: str, prompt: str, intervention: str = "none"
    ) -> LensResult:
        """The lens result stored for one key."""
        meta = self.meta(model)
        key = RecordKey(model, attribute, prompt, intervention)
        records = read_records(key.path(self.out))
        if not records:
            raise RecordError(f"no records at {key.path(self.out)}")
        info = meta["attributes"][attribute]
        return to_result(
            records, info["labels"], meta["positions"], info.get("label_token_ids", ())
        )

    # ---- enrichment (RQ5)
    def enrich_paths(self, model: str, attribute: str, prompt: str) -> tuple[Path, Path]:
        folder = self.root / safe_name(model) / attribute
        return folder / f"enrich.{prompt}.jsonl", folder / f"enrich.{prompt}.json"

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
        """The sweep's setup (``source_layer``, ``gap``, ``probe_ids``, ...) and its rows."""
        rows_path, setup_path = self.enrich_paths(model, attribute, prompt)
        if not setup_path.is_file():
            raise RecordError(f"no enrichment sweep at {setup_path}")
        return json.loads(setup_path.read_text()), read_records(rows_path)
