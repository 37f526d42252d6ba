"""Phi-4-multimodal (``phi4_multimodal``): conformer audio encoder, Phi-4-mini decoder.

The decoder sits at the model's top level (``model.layers``, ``model.norm``); audio enters as
``audio_input_features`` with ``audio_embed_sizes`` (and ``audio_attention_mask`` for a padded
batch). The encoder's subsampling convolutions look past a clip's end into the padding, so each
clip is encoded alone (:mod:`audiolens.architectures.clipwise`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Architecture, causal_lm_at, hub_options, register, with_auto_processor
from .clipwise import clipwise_audio
from .lora import adapter_loaded, missing_adapter

#: where released checkpoints keep the speech LoRA adapter, and the name it is attached under.
SPEECH_ADAPTER = "speech-lora"


def embed(hf_model: torch.nn.Module, inputs: dict[str, Tensor]) -> Tensor:
    """One row's token embeddings with its audio merged in, as ``Phi4MultimodalModel`` builds them."""
    inner: Any = hf_model.model  # Phi4MultimodalModel
    ids = inputs["input_ids"]
    return inner.embed_tokens_extend(
        ids, inner.embed_tokens(ids),
        audio_input_features=inputs["audio_input_features"],
        audio_embed_sizes=inputs["audio_embed_sizes"],
        audio_attention_mask=inputs.get("audio_attention_mask"),
    )


def load_model(name_or_path: str, *, speech_adapter: str | None = SPEECH_ADAPTER, **kwargs: Any) -> torch.nn.Module:
    """``Phi4MultimodalForCausalLM.from_pretrained`` with the speech LoRA attached and active.

    The adapter lives in the checkpoint's ``speech_adapter`` folder and is loaded with peft (as
    the model card does with ``load_adapter`` + ``set_adapter``); this raises when it cannot be.
    ``speech_adapter=None`` reads the base decoder without it.
    """
    from transformers import Phi4MultimodalForCausalLM

    model = Phi4MultimodalForCausalLM.from_pretrained(name_or_path, **kwargs)
    if speech_adapter is None:
        return model
    from transformers.utils import is_peft_available
    from transformers.utils.peft_utils import find_adapter_config_file

    hub = {k: v for k, v in hub_options(kwargs).items() if k != "trust_remote_code"}
    if not is_peft_available() or find_adapter_config_file(name_or_path, subfolder=speech_adapter, **hub) is None:
        raise missing_adapter("Phi-4-multimodal", f"{name_or_path!r}/{speech_adapter}", "speech_adapter=None")
    model.load_adapter(name_or_path, adapter_name="speech", adapter_kwargs={"subfolder": speech_adapter, **hub})
    model.set_adapter("speech")
    if not adapter_loaded(model):
        raise missing_adapter("Phi-4-multimodal", f"{name_or_path!r}/{speech_adapter}", "speech_adapter=None")
    return model


PHI4_MULTIMODAL = register(Architecture(
    name="phi4_multimodal",
    hf_class="Phi4MultimodalForCausalLM",
    **causal_lm_at(),
    audio_token="<|audio|>",
    tokens_per_second=12.5,
    **clipwise_audio(embed),
    load=with_auto_processor(load_model),
))
