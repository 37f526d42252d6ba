"""Pieces every tiny build shares: an offline BPE tokenizer, chat templates, seeded construction.

Real checkpoints carry a trained tokenizer and a chat template; tiny builds train a byte-level
BPE on the prompts and labels in milliseconds (``tokenizers`` library) and use a template of the
family's own shape, so prompts tokenize the way the real model's would (audio markup in the
user turn, the probing prefix starting the assistant turn).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ...tasks import SAKURA_TASKS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def default_corpus() -> list[str]:
    """Text the tiny tokenizers are trained on: every Table I prompt and every label."""
    lines = ["You are a helpful assistant.", "Audio 1:"]
    for task in SAKURA_TASKS.values():
        for fmt in ("P1", "P2", "P3"):
            p = task.prompt(fmt)
            lines += [p.question or "", p.prefix]
        # Repeated so that " label" (leading space, as after "is") becomes one token.
        lines += [f"{task.prefix} {label}." for label in task.labels] * 20
    return [line for line in lines if line]


def train_tokenizer(
    special_tokens: Sequence[str],
    chat_template: str,
    *,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 512,
    eos_token: str | None = None,
    pad_token: str | None = None,
    named_tokens: dict[str, str] | None = None,
) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE with ``special_tokens`` (first = padding) and a chat template.

    ``named_tokens`` become tokenizer attributes that some processors read (e.g.
    ``{"audio_token": "<|audio_pad|>"}`` gives ``tok.audio_token``); they are saved with it.

    Example:
        >>> tok = train_tokenizer(["<pad>", "<audio>"], "{{ messages }}")
        >>> len(tok(" female")["input_ids"]), tok.convert_tokens_to_ids("<audio>")
        (1, 1)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special_tokens = list(special_tokens)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus if corpus is not None else default_corpus()), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=eos_token or ("<|im_end|>" if "<|im_end|>" in special_tokens else special_tokens[0]),
        pad_token=pad_token or special_tokens[0],
        additional_special_tokens=[t for t in special_tokens[1:]],
        padding_side="left",
        model_specific_special_tokens=dict(named_tokens or {}),
    )
    tok.chat_template = chat_template
    return tok


def seeded(seed: int, build: Callable[..., torch.nn.Module], *args: Any, **kwargs: Any) -> torch.nn.Module:
    """``build(*args, **kwargs)`` with torch's global RNG seeded (and restored after), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(*args, **kwargs)
    return model.eval()
