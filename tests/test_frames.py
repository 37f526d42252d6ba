"""Tidy tables: every cell recomputed by hand from the label logits, and the last layer's
probabilities against the HF model's own logits."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import audiolens as al
from audiolens.files import write_parquet


@pytest.fixture(scope="module")
def result(tiny_model, gender_batch, gender_task):
    return al.LogitLens(gender_task, full_vocab=True).run(tiny_model, gender_batch)


def test_to_frame_is_one_row_per_sample_position_layer_label(result):
    df = result.to_frame()
    n_layers, n_samples, n_pos, n_labels = result.label_logits.shape
    assert len(df) == n_layers * n_samples * n_pos * n_labels == 5 * 4 * 2 * 2
    assert list(df.columns) == [
        "id", "label", "target", "layer", "position", "logit", "probability",
        "vocab_probability", "prediction", "correct",
    ]
    keys = df[["id", "position", "layer", "label"]]
    assert not keys.duplicated().any()
    assert df.groupby(["id", "position", "layer"]).size().eq(n_labels).all()


def test_to_frame_values_by_hand(result):
    df = result.to_frame()
    logits = result.label_logits.numpy()
    targets = result.targets.tolist()
    for row in df.itertuples():
        b, p, k = result.ids.index(row.id), result.positions.index(row.position), result.labels.index(row.label)
        z = [float(v) for v in logits[row.layer, b, p]]
        assert row.logit == z[k]
        assert row.probability == pytest.approx(math.exp(z[k]) / sum(math.exp(v) for v in z), rel=1e-12)
        best = max(range(len(z)), key=lambda j: (z[j], -j))  # first maximum, like argmax
        assert row.prediction == result.labels[best]
        assert row.target == result.labels[targets[b]]
        assert row.correct == (best == targets[b])
    # Probabilities over the label set sum to one in every (sample, position, layer).
    sums = df.groupby(["id", "position", "layer"]).probability.sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-12)


def test_last_layer_probabilities_match_the_hf_model(tiny_model, gender_batch, result):
    with torch.no_grad():
        logits = tiny_model.hf_model(**gender_batch.inputs).logits[:, -1].double()
    ids = list(result.label_token_ids)
    vocab = torch.softmax(logits, -1)[:, ids]
    labels = torch.softmax(logits[:, ids], -1)
    df = result.to_frame("last")
    last = df[df.layer == tiny_model.n_layers]
    for row in last.itertuples():
        b, k = result.ids.index(row.id), result.labels.index(row.label)
        assert row.vocab_probability == pytest.approx(float(vocab[b, k]), rel=1e-4)
        assert row.probability == pytest.approx(float(labels[b, k]), rel=1e-4)


def test_info_frame_counts_by_hand(result):
    info = result.info_frame()
    assert list(info.columns) == ["position", "layer", "n", "n_correct", "info_score", "low", "high"]
    assert len(info) == len(result.positions) * (result.n_layers + 1)
    logits = result.label_logits.numpy()
    targets = result.targets.tolist()
    for row in info.itertuples():
        p = result.positions.index(row.position)
        k = sum(int(np.argmax(logits[row.layer, b, p])) == targets[b] for b in range(len(targets)))
        assert (row.n, row.n_correct) == (len(targets), k)
        assert row.info_score == k / len(targets)
        # Wilson interval by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
        n, p_hat, z = len(targets), k / len(targets), 1.96
        centre, half = p_hat + z * z / (2 * n), z * np.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n))
        assert row.low == pytest.approx((centre - half) / (1 + z * z / n))
        assert row.high == pytest.approx((centre + half) / (1 + z * z / n))
    for position in result.positions:
        got = info[info.position == position].sort_values("layer").info_score.to_numpy()
        np.testing.assert_array_equal(got, result.info_scores(position))
    # The tidy table gives the same counts.
    df = result.to_frame()
    per = df[df.label == df.target].groupby(["position", "layer"]).correct.sum()
    assert per.to_dict() == {(r.position, r.layer): r.n_correct for r in info.itertuples()}


def test_frame_without_targets_or_vocab(result):
    bare = al.LensResult(
        label_logits=result.label_logits, targets=None, labels=result.labels,
        positions=result.positions, label_token_ids=result.label_token_ids, ids=result.ids,
    )
    df = bare.to_frame(["attribute"])
    assert "vocab_probability" not in df.columns and set(df.position) == {"attribute"}
    assert df.target.isna().all() and df.correct.isna().all()
    with pytest.raises(ValueError, match="no targets"):
        bare.info_frame()
    with pytest.raises(KeyError, match="not read"):
        bare.to_frame("first")


def test_to_parquet_round_trip(result, tmp_path):
    path = result.to_parquet(tmp_path / "lens.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, result.to_frame(), check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["lens.parquet"]  # no temporary left behind
    # A failed write leaves nothing at the target path.
    import pyarrow

    with pytest.raises(pyarrow.ArrowException):  # pyarrow cannot store arbitrary objects
        write_parquet(pd.DataFrame({"x": [object()]}), tmp_path / "bad.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens.parquet"]


def test_study_frames_cover_every_record(tiny_model, tmp_path):
    task = al.sakura_task("gender")
    t = np.arange(8000) / 16000
    samples = [
        al.data.Sample(f"g{i}", task.labels[i % 2], audio=(0.3 * np.sin(2 * np.pi * (150 + 90 * (i % 2)) * t)).astype(np.float32),
                       sampling_rate=16000)
        for i in range(4)
    ]
    ds = al.data.AttributeDataset(task, samples, "toy")
    study = al.Study(tiny_model, [ds], prompts=["P1", "P3"], out=tmp_path, model_name="tiny",
                     enrich=None, progress=False).run()
    df = study.to_frame()
    assert list(df.columns[:4]) == ["model", "attribute", "prompt", "intervention"]
    keys = df[["prompt", "intervention"]].drop_duplicates()
    assert len(keys) == 2 * 2  # P1/P3 × none/audio_mask
    for (prompt, intervention), part in df.groupby(["prompt", "intervention"]):
        own = study.result("gender", prompt, intervention).to_frame()
        pd.testing.assert_frame_equal(
            part.drop(columns=["model", "attribute", "prompt", "intervention"]).reset_index(drop=True), own
        )
    info = study.info_frame()
    p3 = info[(info.prompt == "P3") & (info.intervention == "none") & (info.position == "last")]
    np.testing.assert_array_equal(p3.info_score.to_numpy(), study.result("gender", "P3").info_scores("last"))
    assert (info.n == 4).all()
