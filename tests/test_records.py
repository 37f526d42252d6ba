"""The record store's guards: atomic rewrites, one writer per folder, and readers that refuse
duplicated ids and name truncated or missing records."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time

import numpy as np
import pytest

from audiolens import records as rec
from audiolens.study.runner import Study

LABELS = ["male", "female"]


def record(i: int) -> dict:
    """A hand-made sample record: 2 layers (0..1) x 2 labels at the last token."""
    return {
        "id": f"s{i}",
        "label": LABELS[i % 2],
        "target": i % 2,
        "prediction": 0,
        "logits": {"last": [[0.0, 0.0], [1.0 + i, 2.0 - i]]},
    }


@pytest.fixture
def store(tmp_path) -> rec.RecordStore:
    """Model "m" with four gender samples s0..s3 expected, no records yet."""
    store = rec.RecordStore(tmp_path)
    store.write_meta(
        {
            "model": "m",
            "n_layers": 1,
            "positions": ["last"],
            "attributes": {"gender": {"labels": LABELS, "ids": [f"s{i}" for i in range(4)]}},
        }
    )
    return store


KEY = rec.RecordKey("m", "gender", "P3", "none")


def test_replacing_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "meta.json"
    rec.write_atomic(path, "old\n")
    with pytest.raises(RuntimeError), rec.replacing(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]  # no temporary file left
    rec.write_atomic(path, b"new\n")
    assert path.read_text() == "new\n" and len(list(tmp_path.iterdir())) == 1


def test_a_second_writer_finds_the_folder_busy_and_can_wait(store):
    lock_path = store.root / "m" / ".lock"
    held = store.lock("m").acquire()
    try:
        start = time.monotonic()
        with pytest.raises(rec.FolderBusy) as err:
            store.lock("m").acquire()
        assert time.monotonic() - start < 5
        who = f"pid {os.getpid()} on {socket.gethostname()}"
        assert re.search(
            rf"folder busy: another run \({re.escape(who)}\) holds {re.escape(str(lock_path))}",
            str(err.value),
        )
        assert store.lock("m").held_elsewhere()
        assert not store.lock("other-model").held_elsewhere()  # one lock per model
    finally:
        threading.Timer(0.5, held.release).start()
    with store.lock("m", wait=30):  # the first run ends half a second later
        assert (
            json.loads((store.root / "m" / ".lock.holder.json").read_text())["pid"] == os.getpid()
        )
    assert not (store.root / "m" / ".lock.holder.json").exists()
    assert not (store.root / "m" / ".lock").exists()  # a finished run leaves no lock file


def test_duplicated_ids_are_refused_naming_the_file_until_consolidated(store, tmp_path):
    rows = [record(i) for i in range(4)]
    rec.append_records(KEY.path(tmp_path), rows)
    want = store.result("m", "gender", "P3").label_logits.numpy()
    rec.append_records(KEY.path(tmp_path), rows[1:3])  # a second run wrote two rows again
    with pytest.raises(
        rec.RecordError, match=re.escape(str(KEY.path(tmp_path))) + ".*2 ids.*s1, s2"
    ):
        store.result("m", "gender", "P3")
    with pytest.raises(rec.RecordError, match="more than once"):
        Study.load(tmp_path)

    done = store.consolidate(KEY, order=[f"s{i}" for i in range(4)])
    assert (done.found, done.dropped, done.merged) == (4, 2, 0)
    assert [r["id"] for r in rec.read_records(KEY.path(tmp_path))] == ["s0", "s1", "s2", "s3"]
    np.testing.assert_array_equal(store.result("m", "gender", "P3").label_logits.numpy(), want)


def test_a_truncated_line_warns_with_the_file_and_is_not_counted(store, tmp_path):
    path = KEY.path(tmp_path)
    rec.append_records(path, [record(i) for i in range(4)])
    whole = path.read_text()
    path.write_text(whole[:-30])  # the kill came during the last line
    got = []
    for read in (lambda: store.result("m", "gender", "P3").ids, store.verify):
        with pytest.warns(rec.RecordWarning) as caught:
            got.append(read())
        said = [str(w.message) for w in caught]
        assert f"{path}: its last line is cut short (66 bytes) and is ignored" in said
        assert any(m.startswith(f"{path}: 1 of 4 samples have no record (s3)") for m in said)
    assert got == [["s0", "s1", "s2"], None]


def test_missing_records_warn_and_the_rest_is_used(store, tmp_path):
    rec.append_records(KEY.path(tmp_path), [record(0), record(2)])
    with pytest.warns(rec.RecordWarning, match=re.escape(str(KEY.path(tmp_path))) + ": 2 of 4"):
        res = store.result("m", "gender", "P3")
    assert res.ids == ["s0", "s2"]
    # The right prediction of s0 and s2 (label 0 at the last layer) is all there is to count.
    assert res.accuracy() == pytest.approx(0.5)


def test_shards_merge_into_the_main_file_in_data_set_order(store, tmp_path):
    rec.append_records(KEY.shard_path(tmp_path, 0), [record(0), record(2)])
    rec.append_records(KEY.shard_path(tmp_path, 1), [record(1), record(3)])
    assert KEY.files(tmp_path) == [KEY.shard_path(tmp_path, 0), KEY.shard_path(tmp_path, 1)]
    assert store.record_keys() == [KEY]  # found before any merge
    assert sorted(store.result("m", "gender", "P3").ids) == ["s0", "s1", "s2", "s3"]
    assert store.done_ids(KEY) == {"s0", "s1", "s2", "s3"}

    # A merge cut short after the main file was written, before the shards were deleted.
    rec.write_records(KEY.path(tmp_path), [record(0), record(1)])
    with pytest.raises(rec.RecordError, match="P3.none.jsonl and .*rank0.jsonl and .*rank1.jsonl"):
        store.result("m", "gender", "P3")
    with open(KEY.shard_path(tmp_path, 1), "a") as fh:
        fh.write('{"id": "s9", "lab')  # and a rank killed mid-line

    done = store.consolidate(KEY, order=["s3", "s2", "s1", "s0"])
    assert (done.found, done.merged, done.dropped, done.cut) == (4, 2, 2, len('{"id": "s9", "lab'))
    assert [r["id"] for r in rec.read_records(KEY.path(tmp_path))] == ["s3", "s2", "s1", "s0"]
    assert KEY.shard_paths(tmp_path) == [] and not (KEY.path(tmp_path).parent / "shards").exists()
    before = KEY.path(tmp_path).read_bytes()
    assert store.consolidate(KEY) == rec.Consolidation(found=4)  # clean: left as it is
    assert KEY.path(tmp_path).read_bytes() == before


def test_meta_keeps_the_union_of_sample_ids(store):
    meta = store.meta("m")
    store.write_meta({**meta, "attributes": {"gender": {"labels": LABELS, "ids": ["s3", "s7"]}}})
    assert store.meta("m")["attributes"]["gender"]["ids"] == ["s0", "s1", "s2", "s3", "s7"]
    with pytest.raises(rec.RecordError, match="other labels"):
        store.write_meta({**meta, "attributes": {"gender": {"labels": ["a", "b"], "ids": []}}})


def test_enrichment_rows_written_twice_are_refused(store, tmp_path):
    rows_path, setup_path = store.enrich_paths("m", "gender", "P3")
    rec.write_atomic(setup_path, json.dumps(
        {"source_layer": 1, "scales": [0.0, 1.0], "seeds": 1, "test_ids": ["a", "b"]}))
    rows = [
        {"id": i, "scale": s, "method": m, "seed": seed, "layer": 1, "prediction": "male",
         "correct": True}
        for i in ("a", "b")
        for s in (0.0, 1.0)
        for m, seed in (("selected", -1), ("random", 0))
    ]
    rec.append_records(rows_path, rows[:7])
    with pytest.warns(rec.RecordWarning, match=re.escape(str(rows_path)) + ": 7 of 8 sweep rows"):
        store.enrichment("m", "gender", "P3")
    rec.append_records(rows_path, rows[6:])
    with pytest.raises(rec.RecordError, match=re.escape(str(rows_path)) + ": 1 .*more than once"):
        store.enrichment("m", "gender", "P3")
    # Rows of the older per-λ layout (no clip ids) are refused with what to do.
    rec.write_records(rows_path, [{"scale": 0.0, "method": "selected", "seed": -1, "accuracy": 1.0}])
    with pytest.raises(rec.RecordError, match="older layout.*run the study again"):
        store.enrichment("m", "gender", "P3")
