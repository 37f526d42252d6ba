"""An offline stand-in for HF processors that cannot be built here (they need torchvision,
torchaudio or a downloaded tokenizer), with the same call signature and outputs.

It renders nothing itself: the chat template writes one placeholder token per clip, and the
call expands it to as many copies as the family's own length rule gives for that clip (the
model's ``_get_feat_extract_output_lengths`` or equivalent), exactly what the HF processors do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature

Features = Callable[[list[np.ndarray]], dict[str, torch.Tensor]]


class PlaceholderProcessor:
    """Tokenizer + feature function + placeholder expansion.

    Args:
        tokenizer: a tokenizer with a chat template and the placeholder token.
        feature_extractor: the object ``audiolens`` reads ``sampling_rate`` and the window from
            (``n_samples`` or ``chunk_length``).
        audio_token: the placeholder's text.
        features: ``features(waves) -> {name: tensor}``, the model's audio inputs, one row per clip.
        n_audio_tokens: ``n_audio_tokens(features) -> per-clip placeholder counts``.

    Example:
        >>> proc = al.models.tiny("qwen2_5_omni_thinker").processor  # doctest: +SKIP
        >>> proc(text=["<|AUDIO|> hi"], audio=[wav], sampling_rate=16000)  # doctest: +SKIP
    """

    def __init__(
        self,
        tokenizer: Any,
        feature_extractor: Any,
        audio_token: str,
        features: Features,
        n_audio_tokens: Callable[[dict[str, torch.Tensor]], Sequence[int]],
    ) -> None:
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.audio_token = audio_token
        self.features = features
        self.n_audio_tokens = n_audio_tokens

    @property
    def chat_template(self) -> str | None:
        return self.tokenizer.chat_template

    def apply_chat_template(self, messages: list[dict], **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(
        self,
        text: Sequence[str],
        audio: Sequence[np.ndarray],
        sampling_rate: int | None = None,
        return_tensors: str = "pt",
        text_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> BatchFeature:
        if sampling_rate is not None and sampling_rate != self.feature_extractor.sampling_rate:
            raise ValueError(f"expected {self.feature_extractor.sampling_rate} Hz audio, got {sampling_rate}")
        feats = self.features(list(audio))
        counts = list(self.n_audio_tokens(feats))
        texts = []
        for t, n in zip(text, counts):
            if t.count(self.audio_token) != 1:
                raise ValueError(f"each text must hold one {self.audio_token!r} placeholder")
            texts.append(t.replace(self.audio_token, self.audio_token * int(n)))
        enc = self.tokenizer(texts, return_tensors="pt", add_special_tokens=False, **(text_kwargs or {}))
        return BatchFeature({**enc, **feats})
