"""Music Flamingo (``musicflamingo``): Audio Flamingo 3's layout plus rotary time embeddings
on the audio side; each clip's ``<sound>`` run is wrapped in ``<|sound_bos|>`` /
``<|sound_eos|>`` by the processor (the ``"audio"`` span is the ``<sound>`` run alone).

The rotary time embedding is applied between the audio tower and the projector:
``encoder.hook_out`` is the tower's output, before it."""

from .base import Architecture, register, whisper_frames

MUSICFLAMINGO = register(Architecture(
    name="musicflamingo",
    hf_class="MusicFlamingoForConditionalGeneration",
    audio_token="<sound>",
    tokens_per_second=25.0,  # 100 mel frames/s, conv stride 2, pooling 2
    audio_encoder="model.audio_tower",
    encoder_layers="model.audio_tower.layers",
    encoder_final_norm="model.audio_tower.layer_norm",
    encoder_pooling="model.audio_tower.avg_pooler",
    projector="model.multi_modal_projector",
    audio_frames=whisper_frames(pool=2, feature_mask="input_features_mask"),
))
