"""Ready-made models: the shipped demo model and tiny random-weight builds for tests."""

from .pretrained import demo, demo_tuned_lens
from .tiny import build_processor, build_tokenizer, families, tiny, tiny_qwen2_audio

__all__ = ["build_processor", "build_tokenizer", "demo", "demo_tuned_lens", "families", "tiny", "tiny_qwen2_audio"]
