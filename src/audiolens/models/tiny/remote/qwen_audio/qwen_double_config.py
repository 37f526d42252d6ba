"""Structural double of Qwen-Audio's configuration (``model_type`` "qwen", audio section,
precision flags)."""

from transformers import PretrainedConfig


class QwenDoubleConfig(PretrainedConfig):
    model_type = "qwen"

    def __init__(self, vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, layer_norm_epsilon=1e-6, rotary_emb_base=10000.0, audio=None,
                 bf16=False, fp16=False, fp32=False, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.rotary_emb_base = rotary_emb_base
        self.bf16, self.fp16, self.fp32 = bf16, fp16, fp32  # the precision the model casts itself to
        if audio is not None:  # a text-only Qwen has no audio section
            self.audio = audio
        super().__init__(**kwargs)
