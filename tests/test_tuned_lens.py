"""The tuned lens: identity equals the logit lens; training lowers held-out KL at every layer."""

import numpy as np
import pytest
import torch

import audiolens as al


@pytest.fixture(scope="module")
def trained(tiny_model):
    rng = np.random.default_rng(0)
    clips = []
    for i in range(10):
        t = np.arange(int(16000 * (0.6 + 0.1 * i))) / 16000
        clips.append((0.3 * np.sin(2 * np.pi * (100 + 30 * i) * t) + rng.normal(0, 0.05, t.size)).astype(np.float32))
    prompts = [al.sakura_task("gender").prompt("P3")]
    return al.TunedLens.train(tiny_model, clips, prompts=prompts, steps=60, lr=3e-3, progress=False)


def test_identity_translators_equal_the_logit_lens(tiny_model, gender_batch, gender_task):
    tuned = al.TunedLens.identity(tiny_model, labels=gender_task)
    plain = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    got = tuned.run(tiny_model, gender_batch)
    assert torch.equal(got.label_logits, plain.label_logits)


def test_training_lowers_held_out_kl_at_every_layer(trained, tiny_model):
    before = np.array(trained.history["kl_before"]["val"])
    after = np.array(trained.history["kl_after"]["val"])
    assert before.shape == (tiny_model.n_layers,)
    assert (after < before).all(), (before, after)


def test_save_load_round_trip_and_use_like_the_logit_lens(trained, tiny_model, gender_batch, tmp_path):
    trained.save(tmp_path / "lens")
    loaded = al.TunedLens.load(tmp_path / "lens", tiny_model)
    a = trained.run(tiny_model, gender_batch)  # labels from the batch's task
    b = loaded.run(tiny_model, gender_batch)
    assert torch.equal(a.label_logits, b.label_logits)
    assert a.info_scores().shape == (tiny_model.n_layers + 1,)
    # the last layer is read as it is: equal to the logit lens there
    plain = al.LogitLens(gender_batch.label_set).run(tiny_model, gender_batch)
    torch.testing.assert_close(a.label_logits[-1], plain.label_logits[-1])
    with pytest.raises(ValueError, match="layers"):
        al.TunedLens.load(tmp_path / "lens", al.models.tiny_qwen2_audio(seed=0, n_layers=2))


def test_shipped_demo_lens_lowers_kl_on_held_out_fixture_clips():
    """Independent of the training run's own numbers: KL measured here on the fixture clips
    (sentences and voices never used in training)."""
    from pathlib import Path

    import soundfile as sf

    model = al.models.demo()
    tuned = al.models.demo_tuned_lens(model)
    files = sorted((Path(__file__).parent / "fixtures/demo").glob("gender_*.ogg"))[:8]
    clips = [sf.read(str(f), dtype="float32")[0][: 3 * 16000] for f in files]
    from audiolens.lenses.tuned import collect_residuals

    resid, target = collect_residuals(model, clips, [al.sakura_task("gender").prompt("P3")], 16000)
    identity = al.TunedLens.identity(model)
    before, after = identity.kl(model, resid, target), tuned.kl(model, resid, target)
    assert (after < before).all(), (before, after)
