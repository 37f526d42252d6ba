"""Tiny random-weight Qwen2-Audio models built offline (no hub access) for tests and demos.

Everything a real checkpoint carries is built here from scratch: a byte-level BPE tokenizer
trained in milliseconds by the ``tokenizers`` library, Qwen2-Audio's chat template, a Whisper
feature extractor with short windows, and a ``Qwen2AudioForConditionalGeneration`` from a small
config. The result saves with ``save_pretrained`` and loads back with ``from_pretrained`` like a
hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

from ..tasks import SAKURA_TASKS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Qwen2AudioProcessor

    from ..hooked import HookedAudioLM

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
)

# Qwen2-Audio-Instruct's template: audio items in the user turn, a default system turn.
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_corpus() -> list[str]:
    """Text the demo tokenizers are trained on: every Table I prompt and every label."""
    lines = ["You are a helpful assistant.", "Audio 1:"]
    for task in SAKURA_TASKS.values():
        for fmt in ("P1", "P2", "P3"):
            p = task.prompt(fmt)
            lines += [p.question or "", p.prefix]
        # Repeated so that " label" (leading space, as after "is") becomes one token.
        lines += [f"{task.prefix} {label}." for label in task.labels] * 20
    return [line for line in lines if line]


def build_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 512
) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE tokenizer with Qwen2-Audio's special tokens and chat template.

    Example:
        >>> tok = build_tokenizer()
        >>> len(tok(" female")["input_ids"])
        1
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus if corpus is not None else default_corpus()), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        padding_side="left",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_processor(
    tokenizer: PreTrainedTokenizerBase | None = None, window_seconds: int = 3, n_mels: int = 80
) -> Qwen2AudioProcessor:
    """A Qwen2-Audio processor with short Whisper windows (``window_seconds`` of 16 kHz audio)."""
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    features = WhisperFeatureExtractor(
        feature_size=n_mels, sampling_rate=16000, hop_length=160, chunk_length=window_seconds
    )
    return Qwen2AudioProcessor(features, tokenizer, chat_template=CHAT_TEMPLATE)


def tiny_qwen2_audio_config(
    processor: Qwen2AudioProcessor,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    audio_layers: int = 2,
    audio_d_model: int = 64,
    attn_implementation: str = "sdpa",
):
    """A small ``Qwen2AudioConfig`` matching ``processor``'s vocabulary and window length."""
    from transformers import Qwen2AudioConfig

    tok = processor.tokenizer
    fe = processor.feature_extractor
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": fe.feature_size,
            "encoder_layers": audio_layers,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": audio_d_model * 4,
            "d_model": audio_d_model,
            # The encoder's two convolutions halve the frame count once.
            "max_source_positions": fe.nb_max_frames // 2,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tok),
            "hidden_size": d_model,
            "intermediate_size": d_model * 4,
            "num_hidden_layers": n_layers,
            "num_attention_heads": n_heads,
            "num_key_value_heads": max(1, n_heads // 2),
            "max_position_embeddings": 1024,
            "tie_word_embeddings": False,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    config._attn_implementation = attn_implementation
    config.text_config._attn_implementation = attn_implementation
    config.audio_config._attn_implementation = attn_implementation
    return config


def tiny_qwen2_audio(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
) -> HookedAudioLM:
    """A random-weight Qwen2-Audio (``n_layers`` decoder layers) wrapped as a HookedAudioLM.

    Deterministic for a seed; builds in well under a second on a CPU.

    Example:
        >>> model = tiny_qwen2_audio(seed=0)
        >>> model.n_layers
        4
    """
    from transformers import Qwen2AudioForConditionalGeneration

    from ..hooked import HookedAudioLM

    processor = build_processor()
    config = tiny_qwen2_audio_config(
        processor, n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf_model = Qwen2AudioForConditionalGeneration(config)
    hf_model.eval()
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
