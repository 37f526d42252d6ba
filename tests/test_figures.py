"""Figs. 2–5 from a small study: PNGs that read back at the documented size, with titles,
labelled axes and legends; and the end-to-end ``reproduce`` pipeline on in-memory clips."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens import figures
from audiolens.data import AttributeDataset, Sample
from audiolens.reproduce import reproduce
from audiolens.study import Study


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
    import matplotlib.image

    path = study.figure(n)
    assert path == study.out / "figures" / f"fig{n}.png"
    assert path.stat().st_size > 10_000
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    assert img[..., :3].std() > 0.05  # not a blank canvas


def texts(fig) -> tuple[str, list[str]]:
    legend_texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    return fig._suptitle.get_text(), legend_texts


def test_fig2_one_line_per_prompt_and_the_chance_level(study):
    fig = figures.build(2, study.store)
    title, legend = texts(fig)
    assert title.startswith("Fig. 2")
    assert legend == ["P1", "P2", "P3", "chance 1/|Y|"]
    gender, language = fig.axes
    assert gender.get_title() == "tiny — gender" and language.get_title() == "tiny — language"
    assert gender.get_xlabel().startswith("layer") and gender.get_ylabel() == "information score"
    lines = {ln.get_label(): ln for ln in language.get_lines()}
    np.testing.assert_allclose(lines["chance 1/|Y|"].get_ydata(), [1 / 8, 1 / 8])
    np.testing.assert_allclose(
        lines["P2"].get_ydata(), study.result("language", "P2").info_scores("last")
    )
    assert list(lines["P1"].get_xdata()) == [0, 1, 2, 3, 4]


def test_fig3_correct_left_green_wrong_right_red(study):
    fig = figures.build(3, study.store)
    ax, right = fig.axes[0], fig.axes[2]  # gender panel and its twin
    res = study.result("gender", "P3")
    assert ax.get_ylabel() == "score, correct" and right.get_ylabel() == "score, wrong"
    assert (
        ax.yaxis.label.get_color() == figures.CORRECT
        and right.yaxis.label.get_color() == figures.WRONG
    )
    if (~res.correct).any():
        (wrong,) = right.get_lines()
        np.testing.assert_allclose(wrong.get_ydata(), res.subset(~res.correct).info_scores("last"))
    assert "correct predictions" in texts(fig)[1] or not res.correct.any()


def test_fig4_last_attribute_and_masked(study):
    fig = figures.build(4, study.store)
    assert texts(fig)[1][:3] == ["last token", "attribute token", "last token, audio masked"]
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    masked = study.result("gender", "P3", "audio_mask")
    np.testing.assert_allclose(
        lines["last token, audio masked"].get_ydata(), masked.info_scores("last")
    )
    np.testing.assert_allclose(
        lines["attribute token"].get_ydata(), study.result("gender", "P3").info_scores("attribute")
    )


def test_fig5_selected_against_random_with_error_bars(study):
    fig = figures.build(5, study.store)
    assert sorted(texts(fig)[1]) == ["random layer (mean ± sd, 2 seeds)", "selected layer ℓ̄"]
    ax = fig.axes[0]
    assert ax.get_xlabel() == "scale λ" and ax.get_ylabel() == "test accuracy (%)"
    setup, rows = study.store.enrichment("tiny", "gender", "P3")
    table = pd.DataFrame(rows)
    sel = table[table["method"] == "selected"].sort_values("scale")
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "selected layer ℓ̄"]
    np.testing.assert_allclose(line.get_ydata(), 100 * sel["accuracy"].to_numpy())
    assert f"probe {setup['n_probe']} / test {setup['n_test']}" in ax.get_title()


def test_unknown_figure_is_refused(study):
    with pytest.raises(ValueError, match="2, 3, 4, 5"):
        study.figure(6)


def test_import_audiolens_does_not_import_matplotlib():
    code = (
        "import sys, audiolens, audiolens.study, audiolens.tables; "
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
    t2 = pd.read_csv(tmp_path / "tables" / "table2.csv", index_col="model")
    name = done.study.model_name
    assert list(t2.index) == [name]
    acc = np.mean([done.study.result("language", p).accuracy() for p in ("P1", "P2", "P3")])
    assert t2.loc[name, "language accuracy %"] == pytest.approx(100 * acc)
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
    expected |= {f"figures/fig{k}.png" for k in (2, 3, 4, 5)}
    assert {p.relative_to(tmp_path).as_posix() for p in files} == expected
    for path in files:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            want = {"gender": 6, "language": 8}[path.parent.name]
            # enrichment: 2 λ x (the selected layer + 5 random-layer seeds)
            assert len(rows) == (12 if path.stem.startswith("enrich") else want)
        elif path.suffix == ".json":
            assert json.loads(path.read_text())
        elif path.suffix == ".csv":
            assert not pd.read_csv(path).empty
        elif path.suffix == ".md":
            assert path.read_text().startswith("| model |")
        else:
            assert matplotlib.image.imread(path).shape[:2] == (HEIGHT, WIDTH)
    text = "\n".join(lines)
    assert "gender: 6 clips, chance 0.50" in text and "language: 8 clips, chance 0.12" in text
    assert "I per layer:" in text and "Table III" in text


def test_reproduce_without_espeak_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from audiolens.cli import main
    from audiolens.data import synth

    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    monkeypatch.setenv("AUDIOLENS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(synth.SynthError, match="apt-get install espeak-ng"):
        reproduce(out=tmp_path / "out", echo=None)
    assert main(["reproduce", "--out", str(tmp_path / "out"), "--per-label", "2"]) == 1
    assert "apt-get install espeak-ng" in capsys.readouterr().err
    assert not (tmp_path / "out" / "records").exists()


def test_plot_info_scores_of_live_results(tmp_path):
    import matplotlib.image as mpimg

    import audiolens as al
    from audiolens.figures import plot_info_scores

    logits = torch.zeros(4, 2, 2, 2)
    logits[:2, 0, :, 1] = 1.0  # sample 0 wrong at layers 0-1,
    logits[2:, 0, :, 0] = 1.0  # right from layer 2 on
    logits[:, 1, :, 1] = 1.0   # sample 1 right everywhere
    res = al.LensResult(logits, torch.tensor([0, 1]), ("a", "b"), ("last", "attribute"), (5, 6))
    fig = plot_info_scores({"last": res, "attribute@attribute": res})
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("last", "attribute")]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.5, 0.5, 1.0, 1.0])
    assert ax.get_xlabel().startswith("layer") and ax.get_ylabel() == "information score"
    path = tmp_path / "scores.png"
    res.plot().savefig(path)
    assert mpimg.imread(path).shape[0] > 100
