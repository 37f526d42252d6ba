"""The study runner: records on disk, resuming after a kill, reloading without a model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens import records as rec
from audiolens.data import AttributeDataset, Sample
from audiolens.lenses.logit import LogitLens
from audiolens.study.runner import Study


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model's matrices are too small to split: with two OpenMP threads on a busy
    two-core machine each product waits on a stalled barrier (measured 50x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model(tiny_model):
    assert tiny_model.n_layers == 4  # the shared tiny model (conftest.py): 4 layers, seed 0
    return tiny_model


def clips(attribute: str, n: int, seed: int = 0) -> AttributeDataset:
    """``n`` in-memory clips (a tone per label plus noise), labels cycling through the task's."""
    task = al.sakura_task(attribute)
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    samples = []
    for i in range(n):
        k = i % len(task.labels)
        wav = 0.3 * np.sin(2 * np.pi * (150 + 60 * k) * t) + 0.05 * rng.standard_normal(t.size)
        samples.append(
            Sample(
                f"{attribute}-{i:02d}",
                task.labels[k],
                audio=wav.astype(np.float32),
                sampling_rate=16000,
            )
        )
    return AttributeDataset(task, samples, f"toy {attribute}")


def make_study(model, out, **kw) -> Study:
    kw.setdefault(
        "enrich",
        {"n_probe": 4, "scales": [0.0, 1.0], "seeds": 2, "gap": 2, "attributes": ["gender"]},
    )
    return Study(
        model,
        [clips("gender", 10), clips("language", 8)],
        prompts=["P1", "P3"],
        batch_size=4,
        out=out,
        model_name="tiny",
        progress=False,
        **kw,
    )


def record_files(out) -> dict[str, str]:
    root = out / "records"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.json*"))}


@pytest.fixture(scope="module")
def finished(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return make_study(model, out).run()


def test_records_hold_every_sample_and_match_a_direct_lens_run(model, finished):
    out = finished.out
    meta = json.loads((out / "records" / "tiny" / "meta.json").read_text())
    assert meta["n_layers"] == 4 and meta["positions"] == ["last", "attribute"]
    assert meta["attributes"]["gender"]["labels"] == ["male", "female"]
    path = rec.RecordKey("tiny", "language", "P3", "audio_mask").path(out)
    lines = rec.read_records(path)
    assert [r["id"] for r in lines] == [f"language-{i:02d}" for i in range(8)]
    first = lines[0]
    assert set(first) == {"id", "label", "target", "prediction", "logits"}
    assert first["label"] == "English" and first["target"] == 0
    assert np.array(first["logits"]["last"]).shape == (5, 8)  # layers 0..4 x 8 labels

    # The stored logits are the lens's own, to float32 precision.
    ds = clips("language", 8)
    batch = model.prepare(
        [s.audio for s in ds.samples[:4]],
        16000,
        ds.task.prompt("P3"),
        ds.labels[:4],
        ids=[s.id for s in ds.samples[:4]],
    )
    # The runner computes both interventions in one run_many call (shared prefix).
    live = LogitLens(ds.task).run_many(model, batch, {"none": [], "audio_mask": [al.AudioMask()]})["audio_mask"]
    alone = LogitLens(ds.task).run(model, batch, interventions=[al.AudioMask()])
    np.testing.assert_allclose(live.label_logits.numpy(), alone.label_logits.numpy(), rtol=1e-4, atol=1e-6)
    # The runner shares the audio prefix across prompt formats (run_formats): the same numbers up
    # to float rounding.
    stored = finished.result("language", "P3", "audio_mask").subset(np.arange(4))
    np.testing.assert_allclose(stored.label_logits.numpy(), live.label_logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stored.predictions("last"), [r["prediction"] for r in lines[:4]])


def test_load_reanalyses_without_a_model(finished):
    loaded = Study.load(finished.out)
    assert loaded.model is None and loaded.models() == ["tiny"]
    for attr, prompt in [("gender", "P1"), ("language", "P3")]:
        a, b = finished.result(attr, prompt), loaded.result(attr, prompt)
        np.testing.assert_array_equal(a.info_scores("attribute"), b.info_scores("attribute"))
        assert a.accuracy() == b.accuracy()
    s = loaded.summary()
    assert sorted(zip(s["attribute"], s["prompt"])) == [
        ("gender", "P1"),
        ("gender", "P3"),
        ("language", "P1"),
        ("language", "P3"),
    ]
    t2 = loaded.table2()
    acc = np.mean([loaded.result("gender", p).accuracy() for p in ("P1", "P3")])
    assert t2.loc[("tiny", "gender"), "accuracy %"] == pytest.approx(100 * acc)
    assert (
        (finished.out / "tables" / "table2.md")
        .read_text()
        .startswith("| model | attribute | n | prompts | critical layer |")
    )
    t3 = loaded.table3()
    assert list(t3["n"]) == [
        int(s["critical_layer"].notna().sum()),
        int(s[s["attribute"] != "gender"]["critical_layer"].notna().sum()),
    ]
    assert (finished.out / "tables" / "table3.csv").is_file()


def test_enrichment_records(finished):
    setup, rows = finished.store.enrichment("tiny", "gender", "P3")
    assert setup["n_probe"] == 4 and setup["n_test"] == 6
    assert sorted(setup["probe_ids"] + setup["test_ids"]) == [f"gender-{i:02d}" for i in range(10)]
    assert setup["source_layer"] in (1, 2)  # 1..L - gap
    jobs = [(0.0, "selected", -1), (0.0, "random", 0), (0.0, "random", 1),
            (1.0, "selected", -1), (1.0, "random", 0), (1.0, "random", 1)]
    # One row per test clip and job, each clip once per job.
    assert sorted((r["id"], r["scale"], r["method"], r["seed"]) for r in rows) == sorted(
        (i, *job) for i in setup["test_ids"] for job in jobs)
    # λ = 0 changes nothing: the answers are the plain run's on the test split.
    plain = finished.result("gender", "P3")
    answer = dict(zip(plain.ids, (plain.labels[k] for k in plain.predictions())))
    assert all(r["prediction"] == answer[r["id"]] for r in rows if r["scale"] == 0)
    # The random layers are the per-clip draws of the whole test split, in its own order.
    seed1 = {r["id"]: r["layer"] for r in rows if r["seed"] == 1 and r["scale"] == 1.0}
    want = al.enrich.random_source_layers(1, setup["n_test"], finished.model.n_layers, setup["gap"])
    assert [seed1[i] for i in setup["test_ids"]] == want.tolist()


def test_interrupted_run_resumes_with_only_the_missing_samples(
    model, finished, tmp_path, monkeypatch
):
    computed: list[tuple[str, str, str]] = []  # (prompt, intervention, id) per lens row
    kill_after = [1]  # lens calls (one per chunk: all prompts and interventions); None = never
    calls = [0]
    real_run_formats, real_run_many = LogitLens.run_formats, LogitLens.run_many

    def counting_run_formats(self, model, batches, variants=None, *, extra=None, **kw):
        if kill_after[0] is not None and calls[0] >= kill_after[0]:
            raise KeyboardInterrupt  # what a Ctrl-C between two batches looks like
        calls[0] += 1
        for prompt, batch in batches.items():
            for kind in {**(variants or {}), **(extra or {}).get(prompt, {})}:
                computed.extend((prompt, kind, i) for i in batch.ids)
        inside[0] = True
        try:
            return real_run_formats(self, model, batches, variants, extra=extra, **kw)
        finally:
            inside[0] = False

    inside = [False]

    def counting_run_many(self, model, batch, variants, **kw):  # the enrichment sweep
        if not inside[0]:
            computed.extend((batch.prompt.name, kind, i) for kind in variants for i in batch.ids)
        return real_run_many(self, model, batch, variants, **kw)

    monkeypatch.setattr(LogitLens, "run_formats", counting_run_formats)
    monkeypatch.setattr(LogitLens, "run_many", counting_run_many)
    with pytest.raises(KeyboardInterrupt):
        make_study(model, tmp_path).run()
    # One call made it to disk: the first chunk, both prompts and interventions. The probe
    # clips run first (ℓ̄ is chosen from them), so it holds gender's four probe clips.
    probe = [s.id for s in clips("gender", 10).split(4, seed=0)[0]]
    assert {i for *_, i in computed} == set(probe)
    assert len(computed) == 16
    done = {
        k: len(rec.read_records(rec.RecordKey("tiny", "gender", *k).path(tmp_path)))
        for k in [("P1", "none"), ("P1", "audio_mask"), ("P3", "none"), ("P3", "audio_mask")]
    }
    assert done == {
        ("P1", "none"): 4,
        ("P1", "audio_mask"): 4,
        ("P3", "none"): 4,
        ("P3", "audio_mask"): 4,
    }

    # A kill in the middle of a write leaves half a line: that sample must be recomputed.
    cut = rec.RecordKey("tiny", "gender", "P1", "none").path(tmp_path)
    cut.write_text(cut.read_text()[:-25])
    assert [r["id"] for r in rec.read_records(cut)] == probe[:3]

    computed.clear()
    kill_after[0] = None
    make_study(model, tmp_path).run()
    n_rows = 2 * 2 * (10 + 8)  # prompts x interventions x samples
    lens_rows = [r for r in computed if isinstance(r[1], str)]  # not the enrichment sweep's
    assert ("P1", "none", probe[3]) in lens_rows
    assert len(lens_rows) == len(set(lens_rows)) == n_rows - 15  # each missing row once, nothing recomputed
    assert not {("P1", "none", probe[0]), ("P1", "audio_mask", probe[1])} & set(lens_rows)

    # Same records as the uninterrupted run: byte for byte where the batches were the same,
    # and to float32 rounding for the one sample recomputed in a batch of its own.
    got, want = record_files(tmp_path), record_files(finished.out)
    assert sorted(got) == sorted(want)
    cut_name = "tiny/gender/P1.none.jsonl"
    assert {k: v for k, v in got.items() if k != cut_name} == {
        k: v for k, v in want.items() if k != cut_name
    }
    a = [json.loads(line) for line in got[cut_name].splitlines()]
    b = [json.loads(line) for line in want[cut_name].splitlines()]
    assert [(r["id"], r["target"], r["prediction"]) for r in a] == [
        (r["id"], r["target"], r["prediction"]) for r in b
    ]
    np.testing.assert_allclose(
        [r["logits"]["last"] for r in a], [r["logits"]["last"] for r in b], rtol=1e-4, atol=1e-5
    )


def test_rerunning_a_finished_study_computes_nothing(model, finished, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a finished study must not run the lens again")

    monkeypatch.setattr(LogitLens, "run", fail)
    monkeypatch.setattr(LogitLens, "run_many", fail)
    before = record_files(finished.out)
    make_study(model, finished.out).run()
    assert record_files(finished.out) == before


def test_study_checks_its_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="prompt formats"):
        Study(model, [clips("gender", 4)], prompts=["P4"], out=tmp_path)
    with pytest.raises(ValueError, match="'none'"):
        Study(model, [clips("gender", 4)], interventions={"mask": [al.AudioMask()]}, out=tmp_path)
    with pytest.raises(ValueError, match="gap"):
        Study(model, [clips("gender", 4)], out=tmp_path, enrich={"gap": 5})  # 4 layers only
    with pytest.raises(rec.RecordError):
        Study.load(tmp_path / "nothing")


def test_records_survive_a_truncated_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    rec.append_records(path, [{"id": "a"}, {"id": "b"}])
    with open(path, "a") as fh:
        fh.write('{"id": "c", "lab')
    assert rec.done_ids(path) == {"a", "b"}
    assert rec.repair(path) == len('{"id": "c", "lab')
    rec.append_records(path, [{"id": "c"}])
    assert [r["id"] for r in rec.read_records(path)] == ["a", "b", "c"]
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(rec.RecordError, match=":2:"):
        rec.read_records(path)


def test_meta_refuses_to_mix_runs(tmp_path):
    store = rec.RecordStore(tmp_path)
    meta = {
        "model": "m",
        "n_layers": 4,
        "positions": ["last"],
        "attributes": {"gender": {"labels": ["male", "female"]}},
    }
    store.write_meta(meta)
    store.write_meta({**meta, "attributes": {"language": {"labels": ["English", "German"]}}})
    assert store.attributes("m") == ["gender", "language"]
    with pytest.raises(rec.RecordError, match="n_layers"):
        store.write_meta({**meta, "n_layers": 8})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rec.safe_name("org/model name") == "org__model_name"


def test_a_sweep_cut_inside_a_batch_reruns_that_batch_only(model, finished, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(finished.out, tmp_path, dirs_exist_ok=True)
    rows_path, _ = rec.RecordStore(tmp_path).enrich_paths("tiny", "gender", "P3")
    lines = rows_path.read_text().splitlines(keepends=True)
    per_batch = 4 * 6  # batch size x (2 λ x 3 methods); the 6 test clips make 2 batches
    rows_path.write_text("".join(lines[: per_batch + 5]) + lines[per_batch + 5][:10])
    runs = []
    real = LogitLens.run_many

    def counting(self, model, batch, variants, **kw):
        runs.append((list(batch.ids), len(variants)))
        return real(self, model, batch, variants, **kw)

    monkeypatch.setattr(LogitLens, "run_many", counting)
    make_study(model, tmp_path).run()
    # Only the second batch ran again, all 6 variants in one call (one prefix pass).
    assert len(runs) == 1 and len(runs[0][0]) == 2 and runs[0][1] == 6
    assert rows_path.read_text() == "".join(lines)


def test_knockout_analysis_is_recorded_and_equals_attention_knockout(tiny_model, tmp_path):
    """Study(knockout=k) records every window as an intervention; its table equals
    al.attention_knockout run directly on the same clips."""
    rng = np.random.default_rng(1)
    task = al.sakura_task("gender")
    clips = {f"c{i}": rng.normal(0, 0.1, 8000 + 2000 * i).astype("float32") for i in range(3)}
    samples = [Sample(id=k, label=lab, audio=v, sampling_rate=16000)
               for (k, v), lab in zip(clips.items(), ["male", "female", "male"])]
    ds = AttributeDataset(task, samples, name="toy")
    study = al.Study(tiny_model, [ds], prompts=["P1", "P3"], out=tmp_path, enrich=None, progress=False, knockout=2)
    study.run()
    table = study.knockout_table()
    assert set(table[table.prompt == "P1"]["keys"]) == {"audio"}  # P1 asks no question
    batch = tiny_model.prepare(list(clips.values()), 16000, task.prompt("P3"), labels=["male", "female", "male"],
                               ids=list(clips))
    for keys in ("audio", "question"):
        ko = al.attention_knockout(tiny_model, batch, task, keys=keys, window=2)
        rows = table[(table.prompt == "P3") & (table["keys"] == keys) & (table.window != "all")]
        assert sorted(rows.window) == sorted(f"{s}-{s + 1}" for s in ko.starts)
        for w, start in enumerate(ko.starts):
            got = rows[rows.window == f"{start}-{start + 1}"].iloc[0]
            assert got.delta == pytest.approx(float(ko.delta[w].mean()), abs=1e-5)
            assert got.n == 3


def test_a_fresh_run_folds_the_sweep_into_the_lens_passes(model, finished, tmp_path, monkeypatch):
    """ℓ̄ comes from the probe clips, which run first; the test clips' lens passes then carry
    every λ and seed of the sweep, so no second pass over them is made. The rows equal
    enrich_sweep run on its own over the test clips."""
    inside, separate = [False], []
    real_formats, real_many = LogitLens.run_formats, LogitLens.run_many

    def formats(self, *args, **kw):
        inside[0] = True
        try:
            return real_formats(self, *args, **kw)
        finally:
            inside[0] = False

    def many(self, model, batch, variants, **kw):
        if not inside[0]:
            separate.append(batch.ids)
        return real_many(self, model, batch, variants, **kw)

    monkeypatch.setattr(LogitLens, "run_formats", formats)
    monkeypatch.setattr(LogitLens, "run_many", many)
    study = make_study(model, tmp_path).run()
    assert separate == []
    setup, rows = study.store.enrichment("tiny", "gender", "P3")
    assert setup == finished.store.enrichment("tiny", "gender", "P3")[0]

    ds = clips("gender", 10)
    test = [s for s in ds.samples if s.id in set(setup["test_ids"])]
    assert [s.id for s in test] == setup["test_ids"]
    batch = model.prepare([s.audio for s in test], 16000, ds.task.prompt("P3"), [s.label for s in test],
                          ids=[s.id for s in test])
    direct = al.enrich_sweep(model, batch, LogitLens(ds.task, positions=("last",)), setup["source_layer"],
                             setup["scales"], random_baseline_seeds=setup["seeds"], gap=setup["gap"],
                             progress=False)
    key = ["id", "scale", "method", "seed"]
    got = pd.DataFrame(rows).sort_values(key).reset_index(drop=True)
    want = direct.rows.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[key + ["layer", "prediction", "correct"]],
                                  want[key + ["layer", "prediction", "correct"]], check_dtype=False)
