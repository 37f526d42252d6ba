"""Ready-made models: the shipped demo model and tiny random-weight builds for tests."""

from .pretrained import demo
from .tiny import build_processor, build_tokenizer, families, tiny, tiny_qwen2_audio

__all__ = ["build_processor", "build_tokenizer", "demo", "families", "tiny", "tiny_qwen2_audio"]
