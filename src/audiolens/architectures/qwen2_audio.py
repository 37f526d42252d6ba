"""Qwen2-Audio (``qwen2_audio``): Whisper encoder, Qwen2 decoder, 25 audio tokens per second."""

from .base import Architecture, register, whisper_tower

QWEN2_AUDIO = register(Architecture(
    name="qwen2_audio",
    hf_class="Qwen2AudioForConditionalGeneration",
    audio_token="<|AUDIO|>",
    **whisper_tower(pool=2, feature_mask="feature_attention_mask"),
))
