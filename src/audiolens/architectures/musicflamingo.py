"""Music Flamingo (``musicflamingo``): Audio Flamingo 3's layout plus rotary time embeddings
on the audio side; each clip's ``<sound>`` run is wrapped in ``<|sound_bos|>`` /
``<|sound_eos|>`` by the processor (the ``"audio"`` span is the ``<sound>`` run alone).

The rotary time embedding is applied between the audio tower and the projector:
``encoder.hook_out`` is the tower's output, before it."""

from dataclasses import replace

from .audioflamingo3 import AUDIOFLAMINGO3
from .base import register

MUSICFLAMINGO = register(replace(AUDIOFLAMINGO3, name="musicflamingo", hf_class="MusicFlamingoForConditionalGeneration"))
