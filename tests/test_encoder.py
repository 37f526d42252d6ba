"""The audio path's hook names, frame axes and errors, and EncoderLens's result, on the tiny
Qwen2-Audio and the shipped demo model (whose encoder has no transformer layers). Exactness
against the HF modules on every family is in ``family_checks`` (test_families.py)."""

import math

import numpy as np
import pytest
import torch

import audiolens as al

AUDIO = lambda n: n.startswith(("encoder.", "projector."))


def test_hook_names_and_encoder_depth(tiny_model):
    n = tiny_model.n_encoder_layers
    assert n == len(tiny_model.hf_model.model.audio_tower.layers) == 2
    names = {name for name in tiny_model.hook_dict if AUDIO(name)}
    assert names == {"encoder.hook_embed", "encoder.hook_out", "projector.hook_out",
                     *(f"encoder.blocks.{i}.hook_resid_post" for i in range(n))}
    assert tiny_model.encoder_name(0) == "encoder.hook_embed"
    assert tiny_model.encoder_name(n) == f"encoder.blocks.{n - 1}.hook_resid_post"
    with pytest.raises(al.EncoderLayerError, match=r"outside 0\.\.2"):
        tiny_model.encoder_name(3)


def test_bad_encoder_names_are_named_errors(tiny_model, gender_batch):
    with pytest.raises(al.EncoderLayerError, match="encoder layer 5 is out of range.*n_encoder_layers"):
        tiny_model.run_with_cache(gender_batch, names_filter=["encoder.blocks.5.hook_resid_post"])
    with pytest.raises(IndexError):  # the builtin it stands for
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("encoder.blocks.2.hook_resid_post", lambda a, hook: a)])
    with pytest.raises(al.errors.UnknownHookError, match="did you mean"):
        tiny_model.run_with_cache(gender_batch, names_filter=["encoder.hook_outt"])


def test_frame_mask_and_seconds_on_a_padded_batch(tiny_model, gender_batch, clips):
    # Clips of 1.0, 2.5, 1.6 and 0.7 s: 100 mel frames per second, 50 encoder frames, 25 tokens.
    seconds = [len(c) / 16000 for c in clips]
    mask = gender_batch.frame_mask("encoder.blocks.1.hook_resid_post")
    assert mask.sum(1).tolist() == [round(s * 50) for s in seconds]
    assert gender_batch.frame_mask("projector.hook_out").sum(1).tolist() == gender_batch.spans["audio"].sum(1).tolist()
    times = gender_batch.frame_seconds("encoder.hook_embed")
    assert times[0, 3].item() == pytest.approx(0.06)
    assert math.isnan(times[0, 50].item()) and not math.isnan(times[1, 50].item())
    tokens = gender_batch.frame_seconds("projector.hook_out")
    assert tokens[1, 10].item() == pytest.approx(0.4)  # 25 audio tokens per second
    assert torch.isnan(tokens[3]).sum().item() == tokens.shape[1] - 17  # 70 mel frames -> 35 -> 17 tokens
    _, cache = tiny_model.run_with_cache(gender_batch, names_filter=AUDIO)
    for name, act in cache.items():
        assert gender_batch.frame_mask(name).shape == act.shape[:2], name
    at = gender_batch.token_seconds()
    audio = gender_batch.span("audio")
    assert bool(torch.isnan(at[~audio]).all()) and not bool(torch.isnan(at[audio]).any())
    row3 = audio[3].nonzero().flatten()
    torch.testing.assert_close(at[3, row3], tokens[3, : len(row3)])
    sub = gender_batch.subset([3, 0])
    assert sub.frame_mask("encoder.hook_out").sum(1).tolist() == [17, 25]
    with pytest.raises(KeyError, match="not an encoder or projector hook"):
        gender_batch.frame_mask("blocks.0.hook_resid_post")


def test_positions_apply_to_the_decoder_hooks_only(tiny_model, gender_batch):
    _, cache = tiny_model.run_with_cache(gender_batch, names_filter=lambda n: n.endswith("resid_post"), positions="last")
    assert not any(AUDIO(n) for n in cache)
    _, cache = tiny_model.run_with_cache(gender_batch, names_filter=["encoder.hook_out", "blocks.0.hook_resid_post"],
                                         positions="last")
    assert cache["encoder.hook_out"].shape[1] == gender_batch.frame_mask("encoder.hook_out").shape[1]
    assert cache["blocks.0.hook_resid_post"].shape[1] == 1


def test_encoder_lens_result(tiny_model, gender_batch, gender_task):
    res = al.EncoderLens(gender_task, positions=("last", "attribute")).run(tiny_model, gender_batch)
    n = tiny_model.n_encoder_layers
    assert res.n_encoder_layers == n and res.decoder_layer == tiny_model.n_layers
    assert res.accuracy().shape == (n + 1,)
    np.testing.assert_array_equal(res.accuracy(), res.info_scores("last"))
    probs = res.label_probs()
    assert probs.shape == (n + 1, len(gender_batch), 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(n + 1, len(gender_batch)))
    plain = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    for pos in ("last", "attribute"):
        torch.testing.assert_close(res.logits_at(pos)[n], plain.logits_at(pos)[-1], atol=1e-5, rtol=1e-5)
    frame = res.to_frame()
    assert sorted(frame.encoder_layer.unique()) == list(range(n + 1))
    # A lower decoder layer is read with the logit lens, as LogitLens reads it.
    low = al.EncoderLens(gender_task, decoder_layer=1).run(tiny_model, gender_batch)
    torch.testing.assert_close(low.logits_at("last")[n], plain.logits_at("last")[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="layers_per_pass"):
        al.EncoderLens(gender_task, layers_per_pass=0)


def test_demo_model_has_no_encoder_layers(gender_task):
    model = al.models.demo()
    assert model.n_encoder_layers == 0
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 24000)]
    batch = model.prepare(clips, 16000, gender_task.prompt("P3"), labels=["male", "female"])
    _, cache = model.run_with_cache(batch, names_filter=AUDIO)
    assert set(cache.keys()) == {"encoder.hook_out", "projector.hook_out"}
    with pytest.raises(al.HookUnavailable, match="no transformer layers"):
        model.run_with_cache(batch, names_filter=["encoder.hook_embed"])
    with pytest.raises(al.EncoderLayerError, match="0 encoder layers"):
        model.run_with_cache(batch, names_filter=["encoder.blocks.0.hook_resid_post"])
    res = al.EncoderLens(gender_task).run(model, batch)  # one entry: the encoder as it is
    plain = al.LogitLens(gender_task).run(model, batch)
    assert res.accuracy().shape == (1,)
    torch.testing.assert_close(res.logits_at("last")[0], plain.logits_at("last")[-1], atol=1e-4, rtol=1e-4)
