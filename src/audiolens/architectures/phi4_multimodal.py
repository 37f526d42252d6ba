"""Phi-4-multimodal (``phi4_multimodal``): conformer audio encoder, Phi-4-mini decoder.

The decoder sits at the model's top level (``model.layers``, ``model.norm``); audio enters as
``audio_input_features`` with ``audio_embed_sizes`` (and ``audio_attention_mask`` for a padded
batch). The encoder's subsampling convolutions look past a clip's end into the padding, so each
clip is encoded alone (:mod:`audiolens.architectures.clipwise`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Architecture, register
from .clipwise import encode_clipwise


def embed(hf_model: torch.nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    """One row's token embeddings with its audio merged in, as ``Phi4MultimodalModel`` builds them."""
    inner = hf_model.model
    ids = inputs["input_ids"]
    return inner.embed_tokens_extend(
        ids, inner.embed_tokens(ids),
        audio_input_features=inputs["audio_input_features"],
        audio_embed_sizes=inputs["audio_embed_sizes"],
        audio_attention_mask=inputs.get("audio_attention_mask"),
    )


PHI4_MULTIMODAL = register(Architecture(
    name="phi4_multimodal",
    hf_class="Phi4MultimodalForCausalLM",
    layers="model.layers",
    final_norm="model.norm",
    audio_token="<|audio|>",
    tokens_per_second=12.5,
    encode=encode_clipwise(embed),
))
