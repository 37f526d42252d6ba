"""Audio Flamingo 3 (``audioflamingo3``): Whisper-style encoder with average pooling, Qwen2
decoder; ``<sound>`` placeholder (``audio_token_id``), features with ``input_features_mask``.

The processor cuts audio into 30-s windows, one feature row each; a batch holds one row per
clip, so a clip must fit one window (longer ones are refused, or cut with ``truncate=True``).
"""

from .base import Architecture, register, whisper_tower

AUDIOFLAMINGO3 = register(Architecture(
    name="audioflamingo3",
    hf_class="AudioFlamingo3ForConditionalGeneration",
    audio_token="<sound>",
    **whisper_tower(pool=2, feature_mask="input_features_mask"),
))
