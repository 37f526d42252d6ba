"""Qwen3-ASR (``qwen3_asr``): chunked convolutional encoder (13 tokens per 100 mel frames),
Qwen3 decoder; placeholder ``<|audio_pad|>`` (``audio_token_id``). Its processor pads features
to the longest clip (a multiple of ``2 · n_window`` frames) and the encoder drops the padded
frames, so rows of a batch do not see each other's padding."""

from .base import PACKED_ENCODER, Architecture, register

QWEN3_ASR = register(Architecture(
    name="qwen3_asr",
    hf_class="Qwen3ASRForConditionalGeneration",
    audio_token="<|audio_pad|>",
    tokens_per_second=13.0,
    encoder_unavailable=PACKED_ENCODER,
))
