"""Figs. 2–5 from a small study: PNGs that read back at the documented size, with titles,
labelled axes and legends; and the end-to-end ``reproduce`` pipeline on in-memory clips."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens.data import AttributeDataset, Sample
from audiolens.lenses import plots
from audiolens.study import figures
from audiolens.study.reproduce import reproduce
from audiolens.study.runner import Study


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices: two OpenMP threads on a busy two-core machine only wait on each other.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tones(attribute: str, n: int) -> AttributeDataset:
    """A 1 s tone per label (pitch by label) plus a little noise: no espeak-ng needed."""
    task = al.sakura_task(attribute)
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    return AttributeDataset(
        task,
        [
            Sample(
                f"{attribute}{i}",
                task.labels[i % len(task.labels)],
                audio=(
                    0.3 * np.sin(2 * np.pi * (120 + 40 * (i % len(task.labels))) * t)
                    + 0.05 * rng.standard_normal(t.size)
                ).astype(np.float32),
                sampling_rate=16000,
            )
            for i in range(n)
        ],
        attribute,
    )


@pytest.fixture(scope="module")
def model(tiny_model):
    assert tiny_model.n_layers == 4  # the shared tiny model (conftest.py): 4 layers, seed 0
    return tiny_model


@pytest.fixture(scope="module")
def study(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("fig")
    return Study(
        model,
        [tones("gender", 8), tones("language", 8)],
        batch_size=8,
        out=out,
        model_name="tiny",
        progress=False,
        enrich={
            "n_probe": 3,
            "scales": [0.0, 0.5, 1.0],
            "seeds": 2,
            "gap": 2,
            "attributes": ["gender"],
        },
    ).run()


# Two attribute panels side by side (Fig. 5: one sweep, drawn two panels wide).
WIDTH = int(2 * figures.PANEL_W * figures.DPI)
HEIGHT = int((figures.PANEL_H + figures.EXTRA_H) * figures.DPI)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_each_figure_is_a_readable_png_of_the_documented_size(study, n):
    import warnings

    import matplotlib.image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", al.metrics.WeakEvidence)  # 8 clips: checked below
        path = study.figure(n)
    assert path == study.out / "figures" / f"fig{n}.png"
    assert path.stat().st_size > 10_000
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    assert img[..., :3].std() > 0.05  # not a blank canvas


def texts(fig) -> tuple[str, list[str]]:
    """The figure's title and its legend's entries in reading order: top row first, each row
    left to right, as laid out on the canvas."""
    (legend,) = fig.legends
    fig.draw_without_rendering()
    boxes = [(t.get_window_extent(), t.get_text()) for t in legend.get_texts()]
    by_row = sorted(boxes, key=lambda b: (-round(b[0].y0), b[0].x0))
    return fig.get_suptitle(), [text for _, text in by_row]


def bands(ax) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(x, low, high) of each shaded band of ``ax``, in drawing order: at each x of the band's
    outline, its lowest and highest y."""
    out = []
    for coll in ax.collections:
        if type(coll).__name__ != "FillBetweenPolyCollection":
            continue
        (path,) = coll.get_paths()
        v = path.vertices
        xs = np.unique(v[:, 0])
        out.append((xs, *np.array([[v[v[:, 0] == x, 1].min(), v[v[:, 0] == x, 1].max()] for x in xs]).T))
    return out


def test_fig2_one_line_per_prompt_with_bands_n_and_critical_layers(study):
    fig = figures.build(2, study.store)
    title, legend = texts(fig)
    assert title.startswith("Fig. 2")
    assert legend == [
        "P1", "P2", "P3", "chance 1/|Y|", "95 % Wilson interval",
        "critical layer, 95 % bootstrap interval",
    ]
    gender, language = fig.axes
    assert gender.get_title() == "tiny — gender (n = 8)"
    assert language.get_title() == "tiny — language (n = 8)"
    assert gender.get_xlabel().startswith("layer") and gender.get_ylabel() == "information score"
    lines = {ln.get_label(): ln for ln in language.get_lines()}
    np.testing.assert_allclose(lines["chance 1/|Y|"].get_ydata(), [1 / 8, 1 / 8])
    res = study.result("language", "P2")
    np.testing.assert_allclose(lines["P2"].get_ydata(), res.info_scores("last"))
    # Three prompt lines a few pixels apart (OFFSET of the layer axis, which spans 4 + 2 PAD
    # layers), each in its own marker and line style.
    d = plots.OFFSET * (4 + 2 * plots.PAD)
    np.testing.assert_allclose(lines["P1"].get_xdata(), np.arange(5) - d)
    np.testing.assert_allclose(lines["P2"].get_xdata(), np.arange(5))
    assert len({(lines[p].get_marker(), lines[p].get_linestyle()) for p in ("P1", "P2", "P3")}) == 3
    # The P2 band is the Wilson interval of k of 8 clips at each layer.
    x, lo, hi = bands(language)[1]
    k = np.round(res.info_scores("last") * 8)
    want_lo, want_hi = al.metrics.wilson_interval(k, 8)
    np.testing.assert_allclose(x, np.arange(5))
    np.testing.assert_allclose(lo, want_lo)
    np.testing.assert_allclose(hi, want_hi)
    # Integer ticks on the layer axis.
    ticks = [t for t in gender.get_xticks() if -0.4 <= t <= 4.4]
    assert ticks == [0, 1, 2, 3, 4]


def test_fig3_correct_left_green_wrong_right_red(study):
    fig = figures.build(3, study.store)
    ax, right = fig.axes[0], fig.axes[2]  # gender panel and its twin
    res = study.result("gender", "P3")
    n_ok, n_wrong = int(res.correct.sum()), int((~res.correct).sum())
    assert ax.get_title() == f"tiny — gender (n = {n_ok} correct, {n_wrong} wrong)"
    assert ax.get_ylabel() == "score, correct" and right.get_ylabel() == "score, wrong"
    assert (
        ax.yaxis.label.get_color() == figures.CORRECT
        and right.yaxis.label.get_color() == figures.WRONG
    )
    for n, axis, name, sub in ((n_ok, ax, "correct", res.correct), (n_wrong, right, "wrong", ~res.correct)):
        notes = [t.get_text() for t in axis.texts]
        if n >= figures.MIN_CLIPS:
            (line,) = axis.get_lines()
            np.testing.assert_allclose(line.get_ydata(), res.subset(sub).info_scores("last"))
            assert not notes
        else:
            assert not axis.get_lines()
            assert notes == [f"{name}: n = {n} < {figures.MIN_CLIPS}, not drawn"]


def fake_store(tmp_path, correct: int, wrong: int, n_probe: int | None = None):
    """A store of one constructed lens result: ``correct`` clips right from layer 1 on and
    ``wrong`` clips wrong everywhere (2 labels, 4 layers), and, with ``n_probe``, an
    enrichment sweep whose probe split holds every wrong clip."""
    from audiolens import records as rec

    n = correct + wrong
    logits = torch.zeros(5, n, 2, 2)
    logits[1:, :correct, :, 0] = 1.0  # target 0 from layer 1 on for the correct clips
    logits[:, correct:, :, 1] = 1.0
    logits[0, :correct, :, 1] = 1.0
    ids = [f"c{i:02d}" for i in range(n)]
    res = al.LensResult(logits, torch.zeros(n, dtype=torch.long), ("a", "b"),
                        ("last", "attribute"), (5, 6), ids)
    store = rec.RecordStore(tmp_path)
    store.write_meta({"model": "fake", "n_layers": 4, "positions": ["last", "attribute"],
                      "attributes": {"gender": {"labels": ["a", "b"], "label_token_ids": [5, 6]}}})
    for prompt in ("P3",):
        rec.append_records(rec.RecordKey("fake", "gender", prompt, "none").path(tmp_path),
                           rec.sample_records(res))
    if n_probe is not None:
        rows_path, setup_path = store.enrich_paths("fake", "gender", "P3")
        probe = ids[n - n_probe :]
        setup = {"attribute": "gender", "prompt": "P3", "gap": 2, "seed": 0,
                 "n_probe": n_probe, "n_test": n - n_probe, "scales": [0.0, 1.0], "seeds": 2,
                 "probe_ids": probe, "test_ids": ids[: n - n_probe], "source_layer": 1,
                 "probe_info_wrong": [0.0] * 5, "note": ""}
        setup_path.write_text(json.dumps(setup))
        # Test clips c00..: right at λ = 0 but the last; at λ = 1 the first half.
        test = ids[: n - n_probe]
        rec.append_records(rows_path, [
            {"id": i, "scale": s, "method": m, "seed": sd, "layer": 1,
             "prediction": "a" if right else "b", "correct": right}
            for s in (0.0, 1.0)
            for m, sd in (("selected", -1), ("random", 0), ("random", 1))
            for k, i in enumerate(test)
            for right in [k < len(test) - 1 if s == 0 else k < len(test) // 2]
        ])
    return store


def test_fig3_hides_a_subset_too_small_and_says_so(tmp_path):
    fig = figures.build(3, fake_store(tmp_path, correct=12, wrong=2))
    ax, right = fig.axes
    assert ax.get_title() == "fake — gender (n = 12 correct, 2 wrong)"
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0, 1, 1, 1, 1])
    assert not right.get_lines()
    assert [t.get_text() for t in right.texts] == ["wrong: n = 2 < 5, not drawn"]
    # Wilson band of the correct clips: [0, 3.8416 / 15.8416] at layer 0, [12 / 15.8416, 1] after.
    ((_, lo, hi),) = bands(ax)
    np.testing.assert_allclose(lo, [0] + [12 / 15.8416] * 4, atol=1e-6)
    np.testing.assert_allclose(hi, [3.8416 / 15.8416] + [1] * 4, atol=1e-6)
    # Five wrong clips are enough to draw.
    fig = figures.build(3, fake_store(tmp_path / "five", correct=12, wrong=5))
    (wrong,) = fig.axes[1].get_lines()
    np.testing.assert_allclose(wrong.get_ydata(), [0] * 5)


def test_fig4_last_attribute_and_masked(study):
    fig = figures.build(4, study.store)
    assert texts(fig)[1][:3] == ["last token", "attribute token", "last token, audio masked"]
    ax = fig.axes[0]
    assert ax.get_title() == "tiny — gender (n = 8)"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    masked = study.result("gender", "P3", "audio_mask")
    np.testing.assert_allclose(
        lines["last token, audio masked"].get_ydata(), masked.info_scores("last")
    )
    np.testing.assert_allclose(
        lines["attribute token"].get_ydata(), study.result("gender", "P3").info_scores("attribute")
    )
    assert len(bands(ax)) == 3


def test_fig5_selected_against_random_with_error_bars(study):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = figures.build(5, study.store)
    assert sorted(texts(fig)[1]) == [
        "random layer (mean ± sd, 2 seeds)", "selected layer ℓ̄", "ℓ̄: 95 % Wilson interval",
    ]
    ax = fig.axes[0]
    # The legend's band looks like the band drawn: same colour, same alpha.
    (legend,) = fig.legends
    (patch,) = [h for h, t in zip(legend.legend_handles, legend.get_texts()) if "Wilson" in t.get_text()]
    (band,) = ax.collections[1:]  # (the first is the random layer's error bars)
    np.testing.assert_allclose(patch.get_facecolor(), band.get_facecolor()[0])
    assert ax.get_xlabel() == "scale λ" and ax.get_ylabel() == "test accuracy (%)"
    setup, rows = study.store.enrichment("tiny", "gender", "P3")
    table = pd.DataFrame(rows)
    sel = table[table["method"] == "selected"].groupby("scale")["correct"].mean()
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "selected layer ℓ̄"]
    np.testing.assert_allclose(line.get_ydata(), 100 * sel.to_numpy())
    assert f"n_probe = {setup['n_probe']}, n_test = {setup['n_test']}" in ax.get_title()
    # How many wrong probe clips ℓ̄ was chosen from, counted here from the records.
    plain = study.result("gender", "P3")
    probe = plain.subset([plain.ids.index(i) for i in setup["probe_ids"]])
    n_wrong = int((~probe.correct).sum())
    clips = "clip" if n_wrong == 1 else "clips"
    assert f"ℓ̄ = {setup['source_layer']} from {n_wrong} wrong probe {clips}" in ax.get_title()
    # No evidence: under five wrong probe clips, or none of them right at any candidate layer.
    candidates = probe.subset(~probe.correct).info_scores("last")[1 : study.store.meta("tiny")["n_layers"] - setup["gap"] + 1]
    weak = [w for w in caught if issubclass(w.category, al.metrics.WeakEvidence)]
    assert len(weak) == (n_wrong < 5 or not candidates.any())


def test_fig5_warns_and_notes_when_lbar_rests_on_few_clips(tmp_path):
    # 8 clips; the probe is the last 4: 1 right and 3 wrong (wrong everywhere, so 0 right at ℓ̄).
    store = fake_store(tmp_path, correct=5, wrong=3, n_probe=4)
    with pytest.warns(al.metrics.WeakEvidence, match="ℓ̄ rests on no evidence: only 3 wrong probe clips"):
        fig = figures.build(5, store)
    ax = fig.axes[0]
    assert ax.get_title() == (
        "fake — gender (P3), n_probe = 4, n_test = 4, gap 2\n"
        "ℓ̄ = 1 from 3 wrong probe clips (0 right at ℓ̄)"
    )
    assert [t.get_text() for t in ax.texts] == [
        ("ℓ̄ rests on no evidence:\nonly 3 wrong probe clips (< 5)\nthe 3 wrong probe clips score 0 at every "
         "candidate layer (1..2):\nℓ̄ = 1 is a tie-break"),
        "λ = 1: ℓ̄ changes 1 of 4 answers (0 fixed, 1 broken)",  # clip c02 turns wrong
    ]
    # The selected line's band: Wilson of 3 of 4 (λ = 0) and 2 of 4 (λ = 1), in percent.
    ((_, lo, hi),) = bands(ax)
    want_lo, want_hi = al.metrics.wilson_interval(np.array([3, 2]), 4)
    np.testing.assert_allclose(lo, 100 * want_lo)
    np.testing.assert_allclose(hi, 100 * want_hi)
    # The two methods sit side by side at each λ.
    (sel,) = [ln for ln in ax.get_lines() if ln.get_label() == "selected layer ℓ̄"]
    assert list(sel.get_xdata()) == pytest.approx([-0.01, 0.99])


def test_fig5_counts_the_clips_an_interrupted_sweep_holds(tmp_path):
    from audiolens import records as rec

    store = fake_store(tmp_path, correct=5, wrong=3, n_probe=4)
    rows_path, _ = store.enrich_paths("fake", "gender", "P3")
    kept = [r for r in rec.read_records(rows_path) if r["id"] != "c03"]  # c03's rows never came
    rec.write_records(rows_path, kept)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = figures.build(5, store)
    assert any("18 of 24 sweep rows recorded" in str(w.message) for w in caught)
    ax = fig.axes[0]
    assert ax.get_title().startswith("fake — gender (P3), n_probe = 4, n_test = 3 of 4, gap 2\n")
    assert "λ = 1: ℓ̄ changes 1 of 3 answers (0 fixed, 1 broken)" in [t.get_text() for t in ax.texts]
    # Wilson of the clips recorded: 3 of 3 right at λ = 0, 2 of 3 at λ = 1.
    ((_, lo, hi),) = bands(ax)
    want_lo, want_hi = al.metrics.wilson_interval(np.array([3, 2]), 3)
    np.testing.assert_allclose(lo, 100 * want_lo)
    np.testing.assert_allclose(hi, 100 * want_hi)


def test_summary_gives_the_sweep_and_says_when_lbar_rests_on_no_evidence(tmp_path):
    from audiolens.study.reproduce import enrichment_lines

    store = fake_store(tmp_path, correct=5, wrong=3, n_probe=4)
    # Test clips c00..c03: at λ = 0 three right (c03 wrong), at λ = 1 two (c02 turns wrong).
    assert enrichment_lines(store, "fake", "gender", "P3") == [
        "  enrichment (P3, 4 test clips): add layer ℓ̄ = 1 to layer 3, scaled by λ",
        "      λ" + " " * 33 + "0      1",
        "      accuracy, ℓ̄ = 1" + " " * 15 + "75.0%  50.0%",
        "      accuracy, random (2 seeds)" + " " * 4 + "75.0%  50.0%",
        "      ℓ̄: changed/fixed/broken" + " " * 7 + "0/0/0  1/0/1",
        ("      ℓ̄ rests on no evidence (only 3 wrong probe clips (< 5); the 3 wrong probe clips score 0 "
         "at every candidate layer (1..2): ℓ̄ = 1 is a tie-break): the sweep tests an arbitrary layer, "
         "not the information score's choice"),
    ]


def test_cli_prints_library_warnings_on_one_line_and_help_has_examples(capsys):
    import warnings

    from audiolens.cli import build_parser, one_line_warnings

    with one_line_warnings(), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Table III: r says little", al.metrics.WeakEvidence, stacklevel=1)
        with pytest.warns(UserWarning, match="not ours"):  # handed on to the usual display
            warnings.warn("not ours", UserWarning, stacklevel=1)
    # (pytest records the other library's warning through Python's own display)
    assert capsys.readouterr().err.splitlines() == ["warning: Table III: r says little (WeakEvidence)"]
    for args in ([], ["reproduce"], ["synth"]):
        parser = build_parser()
        if args:
            parser = parser._subparsers._group_actions[0].choices[args[0]]
        assert "examples:\n  audiolens " in parser.format_help()


def test_unknown_figure_is_refused(study):
    with pytest.raises(ValueError, match="2, 3, 4, 5"):
        study.figure(6)


def test_import_audiolens_does_not_import_matplotlib():
    code = (
        "import sys, audiolens, audiolens.study.runner, audiolens.study.tables; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reproduce_end_to_end_on_in_memory_clips(model, tmp_path):
    lines: list[str] = []
    done = reproduce(
        model,
        [tones("gender", 6), tones("language", 8)],
        tmp_path,
        batch_size=8,
        n_probe=3,
        scales=(0.0, 1.0),
        progress=False,
        echo=lines.append,
    )
    # Four layers leave no room for the paper's gap of 5: a smaller one, said out loud.
    assert any("gap of 2" in line for line in lines)
    t2 = pd.read_csv(tmp_path / "tables" / "table2.csv", index_col=["model", "attribute"])
    name = done.study.model_name
    assert list(t2.index) == [(name, "gender"), (name, "language")]
    acc = np.mean([done.study.result("language", p).accuracy() for p in ("P1", "P2", "P3")])
    assert t2.loc[(name, "language"), "accuracy %"] == pytest.approx(100 * acc)
    t3 = pd.read_csv(tmp_path / "tables" / "table3.csv")
    assert list(t3["subset"]) == ["all", "excluding gender"]
    for md in ("table2.md", "table3.md"):
        assert (tmp_path / "tables" / md).read_text().startswith("| model |")
    import matplotlib.image

    for n, path in done.figures.items():
        assert path == tmp_path / "figures" / f"fig{n}.png"
        assert matplotlib.image.imread(path).shape[:2] == (HEIGHT, WIDTH)
    # Every file written opens as what its name says, with the expected number of rows.
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    name = done.study.model_name
    expected = {f"records/{name}/meta.json"}
    for attr, n in (("gender", 6), ("language", 8)):
        for p in ("P1", "P2", "P3"):
            for i in ("none", "audio_mask"):
                expected.add(f"records/{name}/{attr}/{p}.{i}.jsonl")
    (attr,) = {a for a, _ in done.study.store.enrichments(name)}
    expected |= {f"records/{name}/{attr}/enrich.P3.json", f"records/{name}/{attr}/enrich.P3.jsonl"}
    expected |= {f"tables/table{k}.{e}" for k in (2, 3) for e in ("csv", "md")}
    expected |= {f"figures/fig{k}.png" for k in (2, 3, 4, 5)} | {"report.html"}
    assert {p.relative_to(tmp_path).as_posix() for p in files} == expected
    for path in files:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            want = {"gender": 6, "language": 8}[path.parent.name]
            # enrichment: per test clip, 2 λ x (the selected layer + 5 random-layer seeds)
            if path.stem.startswith("enrich"):
                want = 12 * len(json.loads(path.with_suffix(".json").read_text())["test_ids"])
            assert len(rows) == want
        elif path.suffix == ".json":
            assert json.loads(path.read_text())
        elif path.suffix == ".csv":
            assert not pd.read_csv(path).empty
        elif path.suffix == ".md":
            assert path.read_text().startswith("| model |")
        elif path.suffix == ".html":
            assert path == done.report  # (tests/test_html_report.py checks it)
        else:
            assert matplotlib.image.imread(path).shape[:2] == (HEIGHT, WIDTH)
    text = "\n".join(lines)
    assert "gender: 6 clips, chance 0.50" in text and "language: 8 clips, chance 0.12" in text
    assert "I per layer:" in text and "Table III" in text
    for attr in ("gender", "language"):
        for p in ("P1", "P2", "P3"):
            acc = done.study.result(attr, p).accuracy()
            masked = done.study.result(attr, p, "audio_mask").accuracy()
            assert f"accuracy {100 * acc:.1f}%, audio masked {100 * masked:.1f}%" in text
    assert f"  enrichment (P3, {len(json.loads(next(tmp_path.rglob('enrich.P3.json')).read_text())['test_ids'])} test clips)" in text
    assert "ℓ̄: changed/fixed/broken" in text


def test_a_finished_run_draws_no_empty_progress_bars(model, tmp_path, capsys):
    kwargs = {"batch_size": 8, "n_probe": 3, "scales": (0.0, 1.0), "echo": None}
    reproduce(model, [tones("gender", 6)], tmp_path, progress=False, **kwargs)
    capsys.readouterr()
    reproduce(model, [tones("gender", 6)], tmp_path, progress=True, **kwargs)  # all on disk
    err = capsys.readouterr().err
    assert "enrich" not in err and "0batch" not in err and "0row" not in err


def test_reproduce_without_espeak_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from audiolens.cli import main
    from audiolens.data import synth

    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    monkeypatch.setenv("AUDIOLENS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(synth.SynthError, match="apt-get install espeak-ng"):
        reproduce(out=tmp_path / "out", echo=None)
    assert main(["reproduce", "--out", str(tmp_path / "out"), "--per-label", "2"]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err
    assert not (tmp_path / "out" / "records").exists()


def test_plot_info_scores_of_live_results(tmp_path):
    import matplotlib.image as mpimg

    import audiolens as al
    from audiolens.lenses.plots import plot_info_scores

    logits = torch.zeros(4, 2, 2, 2)
    logits[:2, 0, :, 1] = 1.0  # sample 0 wrong at layers 0-1,
    logits[2:, 0, :, 0] = 1.0  # right from layer 2 on
    logits[:, 1, :, 1] = 1.0   # sample 1 right everywhere
    res = al.LensResult(logits, torch.tensor([0, 1]), ("a", "b"), ("last", "attribute"), (5, 6))
    fig = plot_info_scores({"last": res, "attribute@attribute": res})
    ax = fig.axes[0]
    labels = ("last (n = 2)", "attribute (n = 2)")
    lines = [line for line in ax.get_lines() if line.get_label() in labels]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(lines[0].get_xdata(), np.arange(4) - plots.OFFSET * (3 + 2 * plots.PAD) / 2)
    # Wilson band of 1 of 2 and 2 of 2 clips: [0.0945, 0.9055] (hand-computed) and [2 / 5.8416, 1].
    _, lo, hi = bands(ax)[0]
    np.testing.assert_allclose(lo, [0.094529, 0.094529, 2 / 5.8416, 2 / 5.8416], atol=1e-6)
    np.testing.assert_allclose(hi, [0.905471, 0.905471, 1, 1], atol=1e-6)
    assert ax.get_xlabel().startswith("layer") and ax.get_ylabel() == "information score"
    path = tmp_path / "scores.png"
    res.plot().savefig(path)
    assert mpimg.imread(path).shape[0] > 100
