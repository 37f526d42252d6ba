"""Several processes on one output folder: data-parallel ranks (torch.distributed, gloo) that
write record shards, independent runs kept apart by the folder lock, and a killed rank resumed.
Every run is compared record for record with one plain single-process run."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from test_study import clips, make_study

from audiolens import records as rec
from audiolens.lenses.logit import LogitLens
from audiolens.study.reproduce import reproduce
from audiolens.study.runner import Study

FORK = mp.get_context("fork")  # children share the parent's tiny model: no second start-up
N_ROWS = 2 * 2 * (10 + 8)  # prompts x interventions x clips of make_study
SRC = Path(__file__).resolve().parents[1] / "src"
HALF_LINE = '{"id":"gender-09","label":"fem'  # what a rank killed mid-write leaves


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def single(model, tmp_path_factory) -> Path:
    """The reference: make_study run by one process."""
    out = tmp_path_factory.mktemp("single")
    make_study(model, out).run()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_lens_rows(computed: list[int], before_first=None) -> None:
    """Patch (in a child, or under monkeypatch) LogitLens.run_formats, which the study runs once
    per chunk of clips, to count the lens rows it computes (the enrichment sweep's variants,
    keyed by (λ, seed), are not counted); ``before_first`` runs once, before the first call."""
    real = LogitLens.run_formats

    def run_formats(self, model, batches, variants=None, *, extra=None, **kw):
        if before_first is not None and not computed:
            before_first()
        computed.append(sum(len(b.ids) * sum(isinstance(k, str) for k in {**(variants or {}), **(extra or {}).get(p, {})})
                            for p, b in batches.items()))
        return real(self, model, batches, variants, extra=extra, **kw)

    LogitLens.run_formats = run_formats


def sample_files(out: Path) -> dict[str, dict[str, dict]]:
    """Every sample record file under ``out``: relative path -> id -> record."""
    root = out / "records"
    files = {}
    for p in sorted(root.rglob("*.jsonl")):
        if p.name.startswith("enrich."):
            continue
        lines = rec.read_records(p)
        assert rec.duplicated(r["id"] for r in lines) == [], p
        files[str(p.relative_to(root))] = {r["id"]: r for r in lines}
    return files


def assert_same_records(got: Path, want: Path) -> None:
    """Same files, same ids, same labels and predictions, logits equal to float32 rounding of
    differently padded batches; the same enrichment sweep; no shard left."""
    a, b = sample_files(got), sample_files(want)
    assert sorted(a) == sorted(b)
    assert not list((got / "records").rglob("shards"))
    for name in b:
        assert sorted(a[name]) == sorted(b[name]), name
        for i, r in b[name].items():
            s = a[name][i]
            assert (s["label"], s["target"], s["prediction"]) == (
                r["label"],
                r["target"],
                r["prediction"],
            ), (name, i)
            for pos in r["logits"]:
                np.testing.assert_allclose(s["logits"][pos], r["logits"][pos], rtol=1e-4, atol=1e-5)
    meta = [json.loads((o / "records" / "tiny" / "meta.json").read_text()) for o in (got, want)]
    assert meta[0] == meta[1]
    setups = [rec.RecordStore(o).enrichment("tiny", "gender", "P3") for o in (got, want)]
    assert setups[0][0] == setups[1][0]  # probe/test split, ℓ̄ and its scores
    # The sweep's rows, written by the ranks that ran each test clip, in any order.
    key = ["id", "scale", "method", "seed"]
    sweeps = [pd.DataFrame(s[1]).sort_values(key).reset_index(drop=True) for s in setups]
    pd.testing.assert_frame_equal(sweeps[0], sweeps[1])


def assert_same_tables(got: Path, want: Path) -> None:
    """Byte-identical tables and figures: every statistic (bootstrap intervals included)
    depends on the set of records, not on which rank wrote which line first."""
    written = {}
    for out in (got, want):
        study = Study.load(out)
        study.table2(), study.table3()
        files = [out / "tables" / f"table{n}.{ext}" for n in (2, 3) for ext in ("csv", "md")]
        files += [study.figure(n) for n in (2, 3, 4, 5)]
        written[out] = {p.relative_to(out): p.read_bytes() for p in files}
    assert written[got] == written[want]


# ------------------------------------------------------------------ data-parallel ranks


def _rank(model, out, rank, port, queue, die_after=None) -> None:
    """Rank ``rank`` of 2 running make_study's study (in a forked child)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank)
    )
    computed: list[int] = []
    count_lens_rows(computed)
    if die_after is not None:
        counting = LogitLens.run_formats

        def dying(self, *args, **kw):
            if len(computed) == die_after:
                # Killed during the next write: half a line reaches the shard, then nothing.
                shard = rec.RecordKey("tiny", "gender", "P1", "none").shard_path(out, rank)
                with open(shard, "a") as fh:
                    fh.write(HALF_LINE)
                os._exit(9)
            return counting(self, *args, **kw)

        LogitLens.run_formats = dying
    try:
        make_study(model, out).run()
        queue.put((rank, "ok", sum(computed)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which asserts on it
        queue.put((rank, type(exc).__name__, str(exc)))


def run_ranks(model, out, die_after=None, timeout=90) -> dict[int, tuple]:
    queue, port = FORK.Queue(), free_port()
    procs = [
        FORK.Process(target=_rank, args=(model, out, r, port, queue, die_after if r else None))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a rank hung"
    reports = {}
    while not queue.empty():
        rank, *report = queue.get(timeout=5)
        reports[rank] = tuple(report)
    return reports


def test_two_ranks_write_the_records_of_one_process(model, single, tmp_path):
    reports = run_ranks(model, tmp_path)
    # Each rank computed its own half of the clips (gender 5 + 5, language 4 + 4), none twice.
    assert reports == {0: ("ok", N_ROWS // 2), 1: ("ok", N_ROWS // 2)}
    assert_same_records(tmp_path, single)
    assert_same_tables(tmp_path, single)


def test_every_rank_stops_when_the_folder_is_busy(model, tmp_path):
    with rec.RecordStore(tmp_path).lock("tiny"):  # another run holds the folder
        reports = run_ranks(model, tmp_path)
    busy = f"folder busy: another run (pid {os.getpid()} on {socket.gethostname()}) holds"
    assert reports[0][0] == "FolderBusy" and reports[0][1].startswith(busy)
    assert reports[1][0] == "RankError" and reports[1][1].startswith(
        f"rank 0 failed: FolderBusy: {busy}"
    )
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing written


def test_a_killed_rank_resumes_from_its_shard(model, single, tmp_path, monkeypatch):
    reports = run_ranks(model, tmp_path, die_after=1)
    # The probe clips run first (ℓ̄ is chosen from them). Rank 1 died after its first chunk (its
    # two gender probe clips, P1 and P3); rank 0 did its share of the probe clips and then
    # learned at the barrier that rank 1 was gone, instead of waiting for it.
    assert 1 not in reports and reports[0][0] != "ok"
    shards = sorted(p.name for p in (tmp_path / "records").rglob("shards/*.jsonl"))
    assert len(shards) == 8 + 4 and "P1.none.rank1.jsonl" in shards

    computed: list[int] = []
    notes: list[str] = []
    monkeypatch.setattr(LogitLens, "run_formats", LogitLens.run_formats)  # restored after the test
    count_lens_rows(computed)
    make_study(model, tmp_path, log=notes.append).run()  # resumed by one process
    # rank 1's 2 language probe clips and every test clip (6 gender, 4 language), 4 rows each
    missing = 4 * (2 + 6 + 4)
    assert sum(computed) == missing
    assert notes == [
        (
            f"tiny ({tmp_path / 'records' / 'tiny'}): found {N_ROWS - missing} records, reusing "
            f"them; {missing} rows left to compute; merged 12 shard files of an earlier "
            f"data-parallel run; cut {len(HALF_LINE)} bytes of lines left unfinished by a "
            "killed run"
        )
    ]
    assert_same_records(tmp_path, single)
    assert_same_tables(tmp_path, single)


def test_torchrun_reproduce_equals_one_process(tiny_model, tmp_path):
    """The command a lab runs, `torchrun --nproc-per-node 2 -m audiolens reproduce`, against
    reproduce() in this process, on the tiny model saved to disk and SAKURA-layout clips."""
    model_dir = tmp_path / "tiny"
    tiny_model.hf_model.save_pretrained(model_dir)
    tiny_model.processor.save_pretrained(model_dir)
    data = tmp_path / "sakura"
    for attr, n in (("gender", 6), ("language", 8)):
        track = data / "data" / attr.capitalize()
        (track / "audio").mkdir(parents=True)
        rows = ["file,attribute_label"]
        for s in clips(attr, n).samples:
            sf.write(track / "audio" / f"{s.id}.wav", s.audio, 16000, subtype="FLOAT")
            rows.append(f"{s.id}.wav,{s.label}")
        (track / "metadata.csv").write_text("\n".join(rows) + "\n")
    args = ["--model", str(model_dir), "--data", str(data), "--batch-size", "3"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "audiolens", "reproduce", *args, "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.count("== tiny (4 layers) ==") == 1  # rank 0 alone reports

    one = reproduce(str(model_dir), data, tmp_path / "one", batch_size=3, threads=1,
                    progress=False, echo=None)  # fmt: skip
    a, b = sample_files(tmp_path / "two"), sample_files(one.study.out)
    assert sorted(a) == sorted(b) and len(b) == 2 * 3 * 2  # attributes x prompts x interventions
    for name in b:
        assert sorted(a[name]) == sorted(b[name])
        for i in b[name]:
            assert a[name][i]["prediction"] == b[name][i]["prediction"]
            np.testing.assert_allclose(
                a[name][i]["logits"]["last"], b[name][i]["logits"]["last"], rtol=1e-4, atol=1e-5
            )
    assert not list((tmp_path / "two" / "records").rglob("shards"))
    for table in ("table2.csv", "table3.csv", "table2.md", "table3.md"):  # byte for byte
        assert (tmp_path / "two" / "tables" / table).read_bytes() == one.tables[table].read_bytes()
    for n, fig in one.figures.items():
        assert (tmp_path / "two" / "figures" / f"fig{n}.png").read_bytes() == fig.read_bytes()
    assert sorted(p.name for p in (tmp_path / "two" / "figures").iterdir()) == [
        f"fig{n}.png" for n in (2, 3, 4, 5)
    ]


# ------------------------------------------------------------------ independent runs


def _independent(model, out, name, queue, wait, started=None, release=None, ready=None) -> None:
    """One run of make_study's study into ``out`` (in a forked child). With ``started`` /
    ``release`` it stops before its first lens call, holding the folder, until released."""
    computed: list[int] = []
    notes: list[str] = []

    def hold() -> None:
        started.set()
        release.wait(60)

    count_lens_rows(computed, hold if started is not None else None)
    if ready is not None:
        ready.set()
    try:
        make_study(model, out, log=notes.append).run(wait=wait)
        queue.put((name, "ok", sum(computed), notes))
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which asserts on it
        queue.put((name, type(exc).__name__, str(exc), notes))


def test_a_second_run_finds_the_folder_busy_or_waits_and_reuses(model, single, tmp_path):
    queue = FORK.Queue()
    started, release, ready = FORK.Event(), FORK.Event(), FORK.Event()
    first = FORK.Process(
        target=_independent, args=(model, tmp_path, "first", queue, 0, started, release)
    )
    first.start()
    assert started.wait(60)  # the first run holds the folder and is about to compute

    busy = FORK.Process(target=_independent, args=(model, tmp_path, "busy", queue, 0))
    busy.start()
    busy.join(60)
    name, kind, message, _ = queue.get(timeout=5)
    host = socket.gethostname()
    lock = tmp_path / "records" / "tiny" / ".lock"
    assert (name, kind) == ("busy", "FolderBusy")
    assert message.startswith(f"folder busy: another run (pid {first.pid} on {host}) holds {lock}")

    waiting = FORK.Process(
        target=_independent, args=(model, tmp_path, "waiting", queue, 120), kwargs={"ready": ready}
    )
    waiting.start()
    assert ready.wait(60)
    release.set()
    first.join(90)
    waiting.join(90)
    reports = {r[0]: r[1:] for r in (queue.get(timeout=5), queue.get(timeout=5))}
    assert reports["first"] == ("ok", N_ROWS, [])
    folder = tmp_path / "records" / "tiny"
    said = f"tiny ({folder}): found {N_ROWS} records, reusing them; 0 rows left to compute"
    assert reports["waiting"] == ("ok", 0, [said])
    # One lock-serialised writer at a time: byte for byte the single run's records.
    assert {k: v for k, v in sample_files(tmp_path).items()} == sample_files(single)
    assert_same_records(tmp_path, single)
    assert_same_tables(tmp_path, single)


def test_two_racing_runs_leave_each_record_once(model, single, tmp_path):
    queue = FORK.Queue()
    procs = [FORK.Process(target=_independent, args=(model, tmp_path, n, queue, 120)) for n in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    reports = sorted(queue.get(timeout=5)[1:3] for _ in procs)
    assert reports == [("ok", 0), ("ok", N_ROWS)]  # whoever came second found everything done
    assert_same_records(tmp_path, single)
    assert_same_tables(tmp_path, single)
