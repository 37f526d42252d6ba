"""Tiny random-weight Phi-4-multimodal with an offline processor.

The HF ``Phi4MultimodalProcessor`` needs an image processor (torchvision), so the tiny build pairs
the family's own ``Phi4MultimodalFeatureExtractor`` (pure torch) with a trained tokenizer in a
:class:`PlaceholderProcessor`; the placeholder count per clip is the extractor's
``audio_embed_sizes``, the rule the HF processor uses. The vision tower is shrunk to one layer
(it is built but never run: the probes feed audio only).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .common import seeded, train_tokenizer
from .processor import PlaceholderProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...hooked import HookedAudioLM

AUDIO_TOKEN = "<|audio|>"
IMAGE_TOKEN = "<|image|>"
SPECIAL_TOKENS = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", AUDIO_TOKEN, IMAGE_TOKEN)

# Phi-4-multimodal's chat layout: <|role|>content<|end|>, media written as their tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}{{ '<|audio|>' }}"
    "{% elif content['type'] == 'image' %}{{ '<|image|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE with Phi-4's role markers, ``<|audio|>`` and its chat layout."""
    return train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, corpus=corpus, vocab_size=vocab_size,
                           eos_token="<|end|>")


def build_processor(tokenizer: PreTrainedTokenizerBase | None = None) -> PlaceholderProcessor:
    """Phi-4's feature extractor and tokenizer, with one ``<|audio|>`` per audio embedding."""
    from transformers import Phi4MultimodalFeatureExtractor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    fe = Phi4MultimodalFeatureExtractor()

    def features(waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        out = fe(list(waves), sampling_rate=fe.sampling_rate, return_tensors="pt")
        return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}

    return PlaceholderProcessor(tokenizer, fe, AUDIO_TOKEN, features,
                                n_audio_tokens=lambda feats: feats["audio_embed_sizes"].tolist())


def tiny_phi4_multimodal_config(
    processor: PlaceholderProcessor,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    attn_implementation: str = "sdpa",
):
    """A small ``Phi4MultimodalConfig`` matching ``processor``'s vocabulary and features."""
    from transformers import Phi4MultimodalConfig

    tok = processor.tokenizer
    fe = processor.feature_extractor
    config = Phi4MultimodalConfig(
        vocab_size=len(tok),
        hidden_size=d_model,
        intermediate_size=d_model * 2,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=max(1, n_heads // 2),
        max_position_embeddings=1024,
        original_max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75},
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.pad_token_id,
        eos_token_id=[tok.eos_token_id],
        tie_word_embeddings=False,
        vision_config={
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 28, "patch_size": 14, "crop_size": 28,
            "image_token_id": tok.convert_tokens_to_ids(IMAGE_TOKEN),
        },
        audio_config={
            "input_size": fe.feature_size, "hidden_size": 64, "intermediate_size": 128, "num_blocks": 2,
            "num_attention_heads": 4, "nemo_conv_channels": 16, "ext_pw_out_channel": 64,
            "depthwise_separable_out_channel": 64, "bias_max_distance": 100,
            "time_reduction": fe.audio_compression_rate,
            "audio_token_id": tok.convert_tokens_to_ids(AUDIO_TOKEN),
        },
    )
    for cfg in (config, config.vision_config, config.audio_config):
        cfg._attn_implementation = attn_implementation
    return config


def tiny_phi4_multimodal(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
) -> HookedAudioLM:
    """A random-weight Phi-4-multimodal wrapped as a HookedAudioLM.

    Example:
        >>> model = tiny_phi4_multimodal(seed=0)
        >>> model.n_layers, model.architecture.layers
        (4, 'model.layers')
    """
    from transformers import Phi4MultimodalForCausalLM

    from ...hooked import HookedAudioLM

    processor = build_processor()
    config = tiny_phi4_multimodal_config(
        processor, n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation
    )
    hf_model = seeded(seed, Phi4MultimodalForCausalLM, config)
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
