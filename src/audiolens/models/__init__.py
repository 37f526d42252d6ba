"""Ready-made models: the shipped demo model and tiny random-weight builds for tests.

- :mod:`~audiolens.models.pretrained`: :func:`demo` (a tiny Qwen2-Audio-architecture model
  trained on espeak-ng speech, shipped in ``models/demo/``) and its tuned lens;
- :mod:`~audiolens.models.tiny`: :func:`tiny` builds any native family with random weights and
  an offline processor in milliseconds.

They build wrappers and load tuned lenses, so they sit above the lenses; the study's
``reproduce`` runs the demo model, so they sit below the study; nothing under the study
imports them.
"""

from .pretrained import demo, demo_tuned_lens
from .tiny import build_processor, build_tokenizer, families, tiny, tiny_qwen2_audio

__all__ = ["build_processor", "build_tokenizer", "demo", "demo_tuned_lens", "families", "tiny", "tiny_qwen2_audio"]
