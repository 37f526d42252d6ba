"""Audio Flamingo 3 (``audioflamingo3``): Whisper-style encoder with average pooling, Qwen2
decoder; ``<sound>`` placeholder (``audio_token_id``), features with ``input_features_mask``.

The processor cuts audio into 30-s windows, one feature row each; a batch holds one row per
clip, so a clip must fit one window (longer ones are refused, or cut with ``truncate=True``).
"""

from .base import Architecture, register, whisper_frames

AUDIOFLAMINGO3 = register(Architecture(
    name="audioflamingo3",
    hf_class="AudioFlamingo3ForConditionalGeneration",
    audio_token="<sound>",
    tokens_per_second=25.0,  # 100 mel frames/s, conv stride 2, pooling 2
    audio_encoder="model.audio_tower",
    encoder_layers="model.audio_tower.layers",
    encoder_final_norm="model.audio_tower.layer_norm",
    encoder_pooling="model.audio_tower.avg_pooler",
    projector="model.multi_modal_projector",
    audio_frames=whisper_frames(pool=2, feature_mask="input_features_mask"),
))
