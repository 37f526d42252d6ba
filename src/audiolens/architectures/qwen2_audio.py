"""Qwen2-Audio (``qwen2_audio``): Whisper encoder, Qwen2 decoder, 25 audio tokens per second."""

from .base import Architecture, register, whisper_frames

QWEN2_AUDIO = register(Architecture(
    name="qwen2_audio",
    hf_class="Qwen2AudioForConditionalGeneration",
    audio_token="<|AUDIO|>",
    tokens_per_second=25.0,
    audio_encoder="model.audio_tower",
    encoder_layers="model.audio_tower.layers",
    encoder_final_norm="model.audio_tower.layer_norm",
    encoder_pooling="model.audio_tower.avg_pooler",
    projector="model.multi_modal_projector",
    audio_frames=whisper_frames(pool=2, feature_mask="feature_attention_mask"),
))
