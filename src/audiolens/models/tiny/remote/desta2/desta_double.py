"""Structural double of DeSTA2's remote code: what the audiolens adapter relies on.

- the configuration (``model_type`` "DestaModel") names a Llama and a Whisper checkpoint and a
  prompt size, and fetches their configurations;
- ``DestaDoubleModel.from_pretrained`` builds the model, which loads ``speech_perception.whisper``
  and ``speech_perception.processor`` from the Whisper id and ``llama`` and ``tokenizer`` from the
  Llama id, then loads the connector's weights from ``qformer_connector.pth``;
- ``speech_perception.connector(encoder_hidden_states)`` turns Whisper's encoder states (every
  layer) into ``prompt_size`` vectors of the Llama's width;
- the root has no forward of its own: ``llama`` is driven by ``inputs_embeds``.
"""

import os

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoProcessor,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    WhisperForConditionalGeneration,
)


class DestaDoubleConfig(PretrainedConfig):
    model_type = "DestaModel"

    def __init__(self, llama_model_id=None, whisper_model_id=None, prompt_size=64, **kwargs):
        super().__init__(**kwargs)
        self.llama_model_id = llama_model_id
        self.whisper_model_id = whisper_model_id
        self.prompt_size = prompt_size
        if llama_model_id and whisper_model_id:
            self.whisper_config = AutoConfig.from_pretrained(whisper_model_id)
            self.llama_config = AutoConfig.from_pretrained(llama_model_id)


class Connector(nn.Module):
    """Learned queries attend to each Whisper layer's states; a softmax over layers mixes the
    results per query; a norm and a projection bring them to the Llama's width."""

    def __init__(self, config):
        super().__init__()
        width = config.whisper_config.d_model
        n_states = config.whisper_config.encoder_layers + 1
        self.queries = nn.Parameter(torch.randn(config.prompt_size, width))
        self.cross = nn.MultiheadAttention(width, config.whisper_config.encoder_attention_heads, batch_first=True)
        self.layer_weights = nn.Parameter(torch.zeros(config.prompt_size, n_states))
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, config.llama_config.hidden_size)

    def forward(self, encoder_hidden_states):
        batch = encoder_hidden_states[0].shape[0]
        queries = self.queries.expand(batch, -1, -1)
        per_layer = torch.stack([self.cross(queries, h, h, need_weights=False)[0] for h in encoder_hidden_states], 2)
        mixed = (per_layer * self.layer_weights.softmax(-1)[None, :, :, None]).sum(2)
        return self.proj(self.norm(mixed))


class SpeechPerception(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.whisper = WhisperForConditionalGeneration.from_pretrained(config.whisper_model_id)
        self.processor = AutoProcessor.from_pretrained(config.whisper_model_id)
        self.connector = Connector(config)


class DestaDoubleModel(PreTrainedModel):
    config_class = DestaDoubleConfig

    def __init__(self, config):
        super().__init__(config)
        self.speech_perception = SpeechPerception(config)
        self.llama = AutoModelForCausalLM.from_pretrained(config.llama_model_id)
        self.tokenizer = AutoTokenizer.from_pretrained(config.llama_model_id)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        config = cls.config_class.from_pretrained(pretrained_model_name_or_path)
        model = cls(config)
        weights = torch.load(os.path.join(pretrained_model_name_or_path, "qformer_connector.pth"))
        model.speech_perception.connector.load_state_dict(weights)
        return model.eval()
