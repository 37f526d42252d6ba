"""The wrapper and the logit lens against references no one here wrote: the HF model's own
logits and hidden states, and independent recomputation of Eq. 2."""

import numpy as np
import pytest
import torch

import audiolens as al


def hf_run(model, batch):
    with torch.no_grad():
        return model.hf_model(**batch.inputs, output_hidden_states=True)


def test_hook_names_follow_transformer_lens(tiny_model):
    names = set(tiny_model.hook_dict)
    for layer in range(tiny_model.n_layers):
        for kind in ("resid_pre", "resid_mid", "resid_post", "attn_mask"):
            assert f"blocks.{layer}.hook_{kind}" in names
    assert "ln_final.hook_normalized" in names
    assert tiny_model.resid_name(0) == "blocks.0.hook_resid_pre"
    assert tiny_model.resid_name(tiny_model.n_layers) == f"blocks.{tiny_model.n_layers - 1}.hook_resid_post"
    with pytest.raises(ValueError, match="outside"):
        tiny_model.resid_name(tiny_model.n_layers + 1)


def torch_hooks(module):
    """Every PyTorch hook on ``module``'s submodules (HF may keep some of its own)."""
    return [(name, len(m._forward_hooks), len(m._forward_pre_hooks)) for name, m in module.named_modules()]


def test_wrapping_leaves_hf_model_untouched(tiny_model, gender_batch):
    hf = tiny_model.hf_model
    before = torch_hooks(hf)
    tiny_model.run_with_cache(gender_batch, positions="last")
    assert torch_hooks(hf) == before
    assert not any(hasattr(m, "name") and isinstance(m.name, str) for m in hf.modules())


def test_residuals_equal_hf_hidden_states(tiny_model, gender_batch):
    out = hf_run(tiny_model, gender_batch)
    _, cache = tiny_model.run_with_cache(gender_batch)
    L = tiny_model.n_layers
    for layer in range(L):  # hidden_states[ℓ] is raw for ℓ < L
        torch.testing.assert_close(cache[tiny_model.resid_name(layer)], out.hidden_states[layer], rtol=0, atol=0)
    # hidden_states[L] is already final-normed in HF: it is the final norm of our raw h_L.
    torch.testing.assert_close(cache["ln_final.hook_normalized"], out.hidden_states[L], rtol=0, atol=0)
    torch.testing.assert_close(
        tiny_model.final_norm(cache[tiny_model.resid_name(L)]), out.hidden_states[L], rtol=0, atol=0
    )


def test_resid_mid_is_pre_plus_attention(tiny_model, gender_batch):
    _, cache = tiny_model.run_with_cache(gender_batch)
    layer = tiny_model.hf_model.model.language_model.layers[1]
    with torch.no_grad():
        mid = cache["blocks.1.hook_resid_mid"]
        post = mid + layer.mlp(layer.post_attention_layernorm(mid))
    torch.testing.assert_close(post, cache["blocks.1.hook_resid_post"], rtol=0, atol=1e-6)


def test_run_with_cache_keeps_only_asked_positions(tiny_model, gender_batch):
    logits, cache = tiny_model.run_with_cache(
        gender_batch, names_filter=lambda n: n.endswith("resid_post"), positions=["last", "attribute"]
    )
    _, full = tiny_model.run_with_cache(gender_batch, names_filter="blocks.2.hook_resid_post")
    assert logits.shape == (4, 2, len(tiny_model.tokenizer))
    assert set(cache.keys()) == {f"blocks.{i}.hook_resid_post" for i in range(tiny_model.n_layers)}
    kept = cache["blocks.2.hook_resid_post"]
    assert kept.shape == (4, 2, 64)
    torch.testing.assert_close(kept[:, 0], full["blocks.2.hook_resid_post"][:, -1])
    attr = gender_batch.positions["attribute"]
    torch.testing.assert_close(kept[:, 1], full["blocks.2.hook_resid_post"][torch.arange(4), attr])


def test_lens_last_layer_reproduces_model_logits(tiny_model, gender_batch, gender_task):
    res = al.LogitLens(gender_task, full_vocab=True).run(tiny_model, gender_batch)
    out = hf_run(tiny_model, gender_batch)
    ids = list(res.label_token_ids)
    L = tiny_model.n_layers
    torch.testing.assert_close(res.label_logits[L, :, 0], out.logits[:, -1, ids], rtol=1e-5, atol=1e-5)
    probs = torch.softmax(out.logits[:, -1].float(), -1)[:, ids]
    torch.testing.assert_close(res.label_probs[L, :, 0], probs, rtol=1e-5, atol=1e-7)


def test_info_scores_equal_independent_computation(tiny_model, clips, gender_task):
    model = al.models.tiny_qwen2_audio(seed=3, n_layers=6)
    labels = ["male", "female", "female", "male"] * 2
    batch = model.prepare(clips * 2, 16000, gender_task.prompt("P2"), labels=labels)
    assert (batch.inputs["attention_mask"] == 0).any(), "the batch must exercise left padding"
    res = al.LogitLens(gender_task).run(model, batch)

    out = hf_run(model, batch)
    tok = model.tokenizer
    ids = [tok.convert_tokens_to_ids("Ġmale"), tok.convert_tokens_to_ids("Ġfemale")]
    targets = np.array([0 if x == "male" else 1 for x in labels])
    W, norm = model.hf_model.lm_head.weight, model.hf_model.model.language_model.norm
    expected_logits, expected = [], []
    with torch.no_grad():
        for layer, h in enumerate(out.hidden_states):
            h = h[:, -1] if layer == model.n_layers else norm(h[:, -1])
            logits = h @ W[ids].T
            expected_logits.append(logits)
            expected.append(float((logits.argmax(-1).numpy() == targets).mean()))
    torch.testing.assert_close(res.label_logits[:, :, 0], torch.stack(expected_logits), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(res.info_scores(), np.array(expected))
    assert res.info_scores().shape == (model.n_layers + 1,)
    assert res.accuracy() == expected[-1]
    np.testing.assert_array_equal(res.correct, out.logits[:, -1, ids].argmax(-1).numpy() == targets)


def test_batched_equals_per_sample(tiny_model, clips, gender_task, gender_batch):
    lens = al.LogitLens(gender_task)
    batched = lens.run(tiny_model, gender_batch)
    labels = ["male", "female", "female", "male"]
    for i, (clip, label) in enumerate(zip(clips, labels)):
        single = lens.run(tiny_model, tiny_model.prepare([clip], 16000, gender_task.prompt("P3"), labels=[label]))
        torch.testing.assert_close(single.label_logits[:, 0], batched.label_logits[:, i], rtol=1e-4, atol=1e-5)


def test_positions_name_the_right_tokens(tiny_model, gender_batch, gender_task):
    tok = tiny_model.tokenizer
    ids = gender_batch.inputs["input_ids"]
    for row in range(len(gender_batch)):
        assert tok.convert_ids_to_tokens(int(ids[row, gender_batch.positions["last"][row]])) == "Ġis"
        assert tok.convert_ids_to_tokens(int(ids[row, gender_batch.positions["attribute"][row]])) == "Ġgender"
    audio = gender_batch.spans["audio"]
    # Whisper frames every 10 ms, then the encoder's stride-2 convolution and stride-2 pooling:
    # about 25 audio tokens per second (clips of 1.0, 2.5, 1.6 and 0.7 s).
    frames = [100, 250, 160, 70]
    assert audio.sum(1).tolist() == [((f - 1) // 2 + 1 - 2) // 2 + 1 for f in frames] == [25, 62, 40, 17]
    assert (ids[audio] == tiny_model.audio_token_id).all()


def test_result_subset_and_correct_split(tiny_model, gender_batch, gender_task):
    res = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    wrong = res.subset(~res.correct)
    right = res.subset(res.correct)
    assert len(wrong) + len(right) == len(res)
    if len(right):
        assert right.accuracy() == 1.0
    if len(wrong):
        assert wrong.accuracy() == 0.0
    assert wrong.ids == [i for i, c in zip(res.ids, res.correct) if not c]
    joined = al.LensResult.concat([right, wrong])
    assert sorted(joined.ids) == sorted(res.ids)


def test_attribute_position_info_scores(tiny_model, gender_batch, gender_task):
    res = al.LogitLens(gender_task).run(tiny_model, gender_batch)
    at_attr = res.info_scores(position="attribute")
    assert at_attr.shape == (tiny_model.n_layers + 1,)
    expected = al.metrics.info_scores(res.label_logits[:, :, 1], gender_batch.targets)
    np.testing.assert_array_equal(at_attr, expected)
    with pytest.raises(KeyError, match="not read"):
        res.info_scores(position="nowhere")


def test_hooks_removed_after_exception(tiny_model, gender_batch):
    def boom(act, hook):
        raise RuntimeError("boom")

    before = torch_hooks(tiny_model.hf_model)
    with pytest.raises(RuntimeError, match="boom"):
        tiny_model.run_with_hooks(gender_batch, fwd_hooks=[("blocks.1.hook_resid_post", boom)])
    with pytest.raises(RuntimeError, match="boom"):
        with tiny_model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", boom)]):
            tiny_model(gender_batch)
    assert not any(hp.fwd_hooks for hp in tiny_model.hook_dict.values())
    assert torch_hooks(tiny_model.hf_model) == before
    # And the model still runs cleanly.
    tiny_model(gender_batch)


def test_run_with_hooks_edits_propagate(tiny_model, gender_batch):
    clean = tiny_model(gender_batch, positions="last")
    zeroed = tiny_model.run_with_hooks(
        gender_batch, positions="last",
        fwd_hooks=[(f"blocks.{tiny_model.n_layers - 1}.hook_resid_post", lambda a, hook: torch.zeros_like(a))],
    )
    bias = torch.zeros(zeroed.shape[-1])
    # A zero residual normalises to zero, so the head gives zero logits.
    torch.testing.assert_close(zeroed[:, 0], bias.expand_as(zeroed[:, 0]))
    assert not torch.equal(clean, zeroed)
