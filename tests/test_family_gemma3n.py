"""Gemma-3n is refused with its reason, before any weights load; the reason holds on the
installed transformers (a decoder layer returns a stack of parallel streams)."""

import pytest
import torch
import transformers

import audiolens as al


def test_gemma3n_is_refused_by_name_with_the_reason():
    with pytest.raises(al.UnsupportedModelError, match="'gemma3n' is not supported: .*four parallel residual"):
        al.architectures.architecture_for(transformers.Gemma3nConfig())


def test_gemma3n_checkpoint_is_refused_before_loading(tmp_path):
    transformers.Gemma3nConfig().save_pretrained(tmp_path)  # a config alone: no weights to load
    with pytest.raises(al.UnsupportedModelError, match="AltUp"):
        al.HookedAudioLM.from_pretrained(str(tmp_path))


def test_gemma3n_layers_carry_parallel_streams():
    """What the refusal says: each decoder layer maps a (streams, batch, seq, hidden) stack to
    another, and only the model's output is one (batch, seq, hidden) state."""
    config = transformers.Gemma3nTextConfig(
        vocab_size=64, vocab_size_per_layer_input=64, hidden_size=32, hidden_size_per_layer_input=8,
        intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        layer_types=["sliding_attention", "full_attention"], sliding_window=8, num_kv_shared_layers=0,
        activation_sparsity_pattern=[0.0, 0.0], laurel_rank=4)
    torch.manual_seed(0)
    model = transformers.Gemma3nForCausalLM(config).eval()
    seen = []
    handle = model.model.layers[0].register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    try:
        with torch.no_grad():
            out = model.model(torch.randint(0, 64, (3, 5)))
    finally:
        handle.remove()
    assert seen == [torch.Size([config.altup_num_inputs, 3, 5, 32])] and config.altup_num_inputs == 4
    assert out.last_hidden_state.shape == (3, 5, 32)
