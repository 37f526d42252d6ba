"""Music Flamingo (``musicflamingo``): Audio Flamingo 3's layout plus rotary time embeddings
on the audio side; each clip's ``<sound>`` run is wrapped in ``<|sound_bos|>`` /
``<|sound_eos|>`` by the processor (the ``"audio"`` span is the ``<sound>`` run alone)."""

from .base import Architecture, register

MUSICFLAMINGO = register(Architecture(
    name="musicflamingo",
    hf_class="MusicFlamingoForConditionalGeneration",
    audio_token="<sound>",
    tokens_per_second=25.0,  # 100 mel frames/s, conv stride 2, pooling 2
))
