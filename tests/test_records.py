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


# ------------------------------------------------------------------ order-free statistics


def noisy_store(out, n: int = 40, n_layers: int = 6, seed: int = 0) -> list:
    """Model "m" with gender records under P1..P3: noisy logits whose target wins more often
    in later layers, so that critical layers and their bootstrap intervals are defined and
    depend on which samples a resample draws. Returns the record files."""
    rng = np.random.default_rng(seed)
    ids = [f"g{i:02d}" for i in range(n)]
    store = rec.RecordStore(out)
    store.write_meta({"model": "m", "n_layers": n_layers, "positions": ["last"],
                      "attributes": {"gender": {"labels": LABELS, "ids": ids}}})
    files = []
    for p in ("P1", "P2", "P3"):
        rows = []
        for k, i in enumerate(ids):
            target = k % 2
            logits = rng.standard_normal((n_layers + 1, 2))
            logits[:, target] += np.linspace(-1, 2, n_layers + 1)
            rows.append({"id": i, "label": LABELS[target], "target": target,
                         "prediction": int(logits[-1].argmax()),
                         "logits": {"last": rec._floats(logits)}})
        path = rec.RecordKey("m", "gender", p, "none").path(out)
        rec.append_records(path, rows)
        files.append(path)
    return files


def tables_and_figure_data(out) -> dict[str, bytes]:
    """Everything a reader of ``out`` gets: Tables II and III as written, the summary,
    every record's information scores, and Fig. 2 (which draws the bootstrap intervals)."""
    import warnings

    study = Study.load(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Table III has 3 points: WeakEvidence, checked elsewhere
        study.table2(), study.table3()
    got = {name: (out / "tables" / name).read_bytes() for name in ("table2.csv", "table3.csv")}
    got["summary"] = study.summary().to_csv().encode()
    got["info"] = study.info_frame().to_csv().encode()
    got["fig2"] = study.figure(2).read_bytes()
    return got


def test_every_statistic_depends_on_the_set_of_records_not_their_order(tmp_path):
    one = tmp_path / "one"
    noisy_store(one)
    want = tables_and_figure_data(one)
    summary = Study.load(one).summary()
    assert summary["critical_layer_low"].notna().all()  # intervals the order could move
    assert (summary["critical_layer_high"] > summary["critical_layer_low"]).all()

    # The same records with the lines of every file shuffled (as one process writes them,
    # shortest clip first) ...
    shuffled = tmp_path / "shuffled"
    rng = np.random.default_rng(1)
    for path in noisy_store(shuffled):
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[k] for k in rng.permutation(len(lines))))
    assert tables_and_figure_data(shuffled) == want
    # ... and spread over two ranks' shards, as a torchrun run that a kill left unmerged.
    ranks = tmp_path / "ranks"
    for path in noisy_store(ranks):
        lines = path.read_text().splitlines(keepends=True)
        key = rec.RecordKey("m", "gender", path.name.split(".")[0], "none")
        for r in (0, 1):
            rec.write_atomic(key.shard_path(ranks, r), "".join(lines[r::2][::-1]))
        path.unlink()
    assert tables_and_figure_data(ranks) == want
    # A canonical order: by id, whichever file and line a record came from.
    assert Study.load(ranks).result("gender", "P1").ids == sorted(f"g{i:02d}" for i in range(40))


def test_enrichment_rows_read_back_in_one_order(store, tmp_path):
    rows_path, setup_path = store.enrich_paths("m", "gender", "P3")
    rec.write_atomic(setup_path, json.dumps(
        {"source_layer": 1, "scales": [0.0, 1.0], "seeds": 1, "test_ids": ["a", "b"]}))
    rows = [
        {"id": i, "scale": s, "method": m, "seed": seed, "layer": 1, "prediction": "male",
         "correct": True}
        for i in ("b", "a") for s in (1.0, 0.0) for m, seed in (("random", 0), ("selected", -1))
    ]
    rec.write_records(rows_path, rows)
    _, first = store.enrichment("m", "gender", "P3")
    rec.write_records(rows_path, rows[::-1])
    assert store.enrichment("m", "gender", "P3")[1] == first
    # By (id, λ, method, seed).
    assert [(r["id"], r["scale"], r["method"]) for r in first][:3] == [
        ("a", 0.0, "random"), ("a", 0.0, "selected"), ("a", 1.0, "random")]
    # A row of a clip the test split does not hold is refused, naming the file.
    rec.append_records(rows_path, [{**rows[0], "id": "zz"}])
    with pytest.raises(rec.RecordError, match=re.escape(str(rows_path)) + ": 1 sweep rows of clips outside"):
        store.enrichment("m", "gender", "P3")


# ------------------------------------------------------------------ records checked at read


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: {**r, "id": "x9"}, "1 records of samples that are not in the study's gender data set \\(x9"),
        (lambda r: {**r, "target": 2, "label": "other"}, r"target 2 is not a label index 0..1 \(male, female\)"),
        (lambda r: {**r, "target": -1}, "target -1 is not a label index"),
        (lambda r: {**r, "target": 1.0}, "target 1.0 is not a label index"),
        (lambda r: {**r, "label": "female"}, r"label 'female' does not match target 0 \('male'\)"),
        (lambda r: {**r, "prediction": 5}, "prediction 5 is not a label index"),
        (lambda r: {**r, "logits": {"last": [[0.0, 0.0]]}},
         r"logits at 'last' are \(1, 2\); a model of 1 layers and 2 labels has \(2, 2\)"),
        (lambda r: {**r, "logits": {"last": [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]}},
         r"logits at 'last' are \(2, 3\)"),
        (lambda r: {**r, "logits": {"last": [[0.0], [1.0, 2.0]]}}, "logits at 'last' are ragged or not numbers"),
        (lambda r: {**r, "logits": {"first": [[0.0, 0.0], [1.0, 2.0]]}}, "no logits at position 'last'"),
        (lambda r: {k: v for k, v in r.items() if k != "target"}, "a sample record without target"),
    ],
)
def test_a_record_that_does_not_fit_the_study_is_refused_naming_file_and_line(
    store, tmp_path, change, message
):
    path = KEY.path(tmp_path)
    rows = [record(i) for i in range(4)]
    rows[2] = change(rows[2])
    rec.append_records(path, rows)
    with pytest.raises(rec.RecordError, match=re.escape(f"{path}:3: ") + message):
        store.result("m", "gender", "P3")
    with pytest.raises(rec.RecordError, match=re.escape(f"{path}:3: ")):
        Study.load(tmp_path)


def test_a_line_that_is_not_a_record_is_named_with_file_and_line(store, tmp_path):
    path = KEY.path(tmp_path)
    rec.append_records(path, [record(0)])
    with open(path, "a") as fh:
        fh.write("[1, 2]\n")
    with pytest.raises(rec.RecordError, match=re.escape(f"{path}:2: not a record (a JSON object expected, got list)")):
        store.result("m", "gender", "P3")
    path.write_bytes(json.dumps(record(0)).encode() + b"\n{\xff\xfe}\n")
    with pytest.raises(rec.RecordError, match=re.escape(f"{path}:2: not a JSON record (not UTF-8")):
        store.result("m", "gender", "P3")
    path.write_text(json.dumps(record(0)) + "\n{oops\n" + json.dumps(record(1)) + "\n")
    with pytest.raises(rec.RecordError, match=re.escape(f"{path}:2: not a JSON record")):
        store.result("m", "gender", "P3")


def test_n_counts_exactly_the_records_used(store, tmp_path):
    rec.append_records(KEY.path(tmp_path), [record(i) for i in range(3)])
    with pytest.warns(rec.RecordWarning, match="1 of 4 samples have no record"):
        summary = Study.load(tmp_path).summary()
    with pytest.warns(rec.RecordWarning, match="1 of 4 samples have no record"):
        res = store.result("m", "gender", "P3")
    assert summary["n"].tolist() == [3]
    assert len(res) == 3 and res.ids == ["s0", "s1", "s2"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", r"not a study's meta.json \(Expecting property name"),
        ('["a list"]', r"not a study's meta.json \(a JSON object expected\)"),
        ('{"format": 1, "model": "m"}', r"not a study's meta.json \(no n_layers, positions, attributes\)"),
        ('{"format": 1, "model": "m", "n_layers": "8", "positions": [], "attributes": {}}',
         r"not a study's meta.json \(n_layers is '8'\)"),
        ('{"format": 7, "model": "m", "n_layers": 8, "positions": [], "attributes": {}}',
         "record format 7 is not 1"),
    ],
)
def test_a_garbage_or_foreign_meta_json_is_a_named_error(store, tmp_path, text, message):
    path = store.meta_path("m")
    path.write_text(text)
    for read in (lambda: store.meta("m"), store.models, lambda: Study.load(tmp_path),
                 lambda: store.write_meta({"model": "m", "n_layers": 1, "positions": ["last"],
                                           "attributes": {}})):
        with pytest.raises(rec.RecordError, match=re.escape(str(path)) + ": " + message):
            read()


def test_two_model_names_with_one_folder_never_share_records(tmp_path):
    store = rec.RecordStore(tmp_path)
    meta = {"n_layers": 1, "positions": ["last"],
            "attributes": {"gender": {"labels": LABELS, "ids": ["s0"]}}}
    store.write_meta({"model": "org/m", **meta})
    rec.append_records(rec.RecordKey("org/m", "gender", "P3", "none").path(tmp_path), [record(0)])
    assert rec.safe_name("org/m") == rec.safe_name("org__m")  # one folder name for both
    folder = re.escape(str(store.meta_path("org/m")))
    said = folder + " holds the records of model 'org/m', not 'org__m'.*another name"
    with pytest.raises(rec.RecordError, match=said):
        store.write_meta({"model": "org__m", **meta})
    with pytest.raises(rec.RecordError, match=said):
        store.result("org__m", "gender", "P3")
    assert store.models() == ["org/m"]
    assert store.result("org/m", "gender", "P3").ids == ["s0"]


def test_the_knockout_table_pairs_clips_by_id_and_counts_the_pairs(store, tmp_path):
    from audiolens.study.report import Report

    rec.append_records(KEY.path(tmp_path), [record(i) for i in (3, 0, 2, 1)])
    knocked = rec.RecordKey("m", "gender", "P3", "knockout_audio")
    flat = {"logits": {"last": [[0.0, 0.0], [0.0, 0.0]]}}  # p(target) = 0.5 when knocked out
    rec.append_records(knocked.path(tmp_path), [{**record(i), **flat} for i in (2, 0)])  # cut short
    with pytest.warns(rec.RecordWarning, match="2 of 4 samples have no record"):
        table = Report(store, tmp_path).knockout_table()
    # Plain p(target) of s0 and s2 from their last-layer logits [1 + i, 2 - i], target i % 2.
    p0 = 1 / (1 + np.exp(1.0))  # s0: softmax([1, 2])[0]
    p2 = np.exp(3.0) / (np.exp(3.0) + 1)  # s2: softmax([3, 0])[0]
    row = table.iloc[0]
    assert (row["keys"], row["window"], row["n"]) == ("audio", "all", 2)
    assert row["p_target"] == pytest.approx((p0 + p2) / 2)
    assert row["p_target_knocked"] == pytest.approx(0.5)
    assert row["delta"] == pytest.approx(0.5 - (p0 + p2) / 2)


def test_a_garbage_enrichment_setup_is_named_and_a_run_redoes_its_sweep(store, tmp_path):
    from audiolens.study.enrichment import sweep_changed

    _, setup_path = store.enrich_paths("m", "gender", "P3")
    setup_path.parent.mkdir(parents=True, exist_ok=True)
    setup_path.write_text('{"source_layer": 1, "scal')
    with pytest.raises(rec.RecordError, match=re.escape(str(setup_path)) + ": not an enrichment sweep's setup"):
        store.enrichment("m", "gender", "P3")
    assert sweep_changed(setup_path, {"source_layer": 1})  # a run rewrites it and redoes the rows


def test_one_name_for_two_hub_checkpoints_is_refused(tiny_model, tmp_path):
    config = tiny_model.hf_model.config
    before = config._name_or_path
    try:
        config._name_or_path = "org-a/speech-lm"  # loaded from the hub (no such folder here)
        Study(tiny_model, [], out=tmp_path, enrich=None, progress=False).run()
        store = rec.RecordStore(tmp_path)
        assert store.models() == ["speech-lm"]
        assert store.meta("speech-lm")["checkpoint"] == "org-a/speech-lm"
        Study(tiny_model, [], out=tmp_path, enrich=None, progress=False).run()  # same: resumes
        config._name_or_path = "org-b/speech-lm"  # another checkpoint, the same name
        with pytest.raises(rec.RecordError, match="loaded from 'org-a/speech-lm'; this run's "
                           "'speech-lm' comes from 'org-b/speech-lm'; give it another name"):
            Study(tiny_model, [], out=tmp_path, enrich=None, progress=False).run()
        Study(tiny_model, [], out=tmp_path, enrich=None, progress=False, model_name="b-lm").run()
        assert sorted(store.models()) == ["b-lm", "speech-lm"]
        # A local folder is no hub id: its copy of a hub model resumes the hub run's records.
        config._name_or_path = str(tmp_path)
        Study(tiny_model, [], out=tmp_path, enrich=None, progress=False,
              model_name="speech-lm").run()
        assert store.meta("speech-lm")["checkpoint"] == "org-a/speech-lm"  # still known
    finally:
        config._name_or_path = before
