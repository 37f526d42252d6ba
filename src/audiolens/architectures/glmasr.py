"""GLM-ASR (``glmasr``): rotary Whisper-style encoder whose frames are merged four at a time,
Llama decoder. The placeholder id is the config's ``audio_token_id`` (the processor writes it
as ``<|pad|>``, which is not the tokenizer's padding token)."""

from .base import Architecture, register

GLMASR = register(Architecture(
    name="glmasr",
    hf_class="GlmAsrForConditionalGeneration",
    tokens_per_second=12.5,  # 100 mel frames/s, conv stride 2, merge 4
))
