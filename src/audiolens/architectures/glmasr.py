"""GLM-ASR (``glmasr``): rotary Whisper-style encoder whose frames are merged four at a time,
Llama decoder. The placeholder id is the config's ``audio_token_id`` (the processor writes it
as ``<|pad|>``, which is not the tokenizer's padding token).

``encoder.hook_out`` is the tower's output (after its final norm), one row per encoder frame; the
model then joins four consecutive frames into one projector input row."""

from .base import Architecture, register, whisper_tower

GLMASR = register(Architecture(
    name="glmasr",
    hf_class="GlmAsrForConditionalGeneration",
    **whisper_tower(merge=4, feature_mask="input_features_mask", norm="norm"),
))
