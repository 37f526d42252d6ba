"""Listening analyses: attention by span, head interventions, audio heads, counterfactual audio.
Exactness of attention by span against HF ``output_attentions`` on every family lives in
``family_checks`` (run by test_families.py and test_remote_code.py)."""

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens.analysis.attention import SpanAttention, SpanAttentionRecorder


@pytest.fixture(scope="module")
def setup():
    model = al.models.tiny("qwen2_audio", seed=0)
    task = al.sakura_task("gender")
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 24000, 12000, 20000)]
    labels = ["male", "female", "female", "male"]
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=labels)
    return model, task, batch, clips, labels


def test_attention_recorded_in_a_lens_pass_equals_its_own_pass(setup):
    model, task, batch, *_ = setup
    alone = al.attention_to_spans(model, batch)
    rec = SpanAttentionRecorder(model, batch)
    with rec.recording():
        res = al.LogitLens(task).run(model, batch)
    torch.testing.assert_close(rec.result().share, alone.share, atol=0, rtol=0)
    # ... and the lens it rode along with is unchanged
    torch.testing.assert_close(res.label_logits, al.LogitLens(task).run(model, batch).label_logits, atol=0, rtol=0)


def test_attention_frame_and_joined_batches(setup):
    model, _, batch, *_ = setup
    att = al.attention_to_spans(model, [batch.subset([0, 1]), batch.subset([2, 3])], layers=[1, 3])
    whole = al.attention_to_spans(model, batch, layers=[1, 3])
    torch.testing.assert_close(att.share, whole.share, atol=1e-6, rtol=1e-5)
    frame = att.to_frame()
    assert list(frame.columns[:4]) == ["layer", "head", "span", "share"]
    assert len(frame) == 2 * att.heads * len(att.spans)
    sums = frame.groupby(["layer", "head"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    assert (frame["low"] <= frame["share"]).all() and (frame["share"] <= frame["high"]).all()
    per_clip = att.to_frame(per_clip=True)
    assert set(per_clip["id"]) == set(batch.ids)
    fig = att.plot("audio")
    assert fig.axes[0].get_images()[0].get_array().shape == (2, att.heads)


def test_attention_bad_input(setup):
    model, _, batch, *_ = setup
    with pytest.raises(ValueError, match="outside 1..4"):
        al.attention_to_spans(model, batch, layers=[0])
    with pytest.raises(KeyError, match="unknown position"):
        al.attention_to_spans(model, batch, queries="nowhere")
    with pytest.raises(ValueError, match="does not match"):
        SpanAttention([1], ["audio"], torch.zeros(2, 1, 1, 1), ["a"])
