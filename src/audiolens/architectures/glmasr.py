"""GLM-ASR (``glmasr``): rotary Whisper-style encoder whose frames are merged four at a time,
Llama decoder. The placeholder id is the config's ``audio_token_id`` (the processor writes it
as ``<|pad|>``, which is not the tokenizer's padding token).

``encoder.hook_out`` is the tower's output (after its final norm), one row per encoder frame; the
model then joins four consecutive frames into one projector input row."""

from .base import Architecture, register, whisper_frames

GLMASR = register(Architecture(
    name="glmasr",
    hf_class="GlmAsrForConditionalGeneration",
    tokens_per_second=12.5,  # 100 mel frames/s, conv stride 2, merge 4
    audio_encoder="model.audio_tower",
    encoder_layers="model.audio_tower.layers",
    encoder_final_norm="model.audio_tower.norm",
    projector="model.multi_modal_projector",
    audio_frames=whisper_frames(merge=4, feature_mask="input_features_mask"),
))
