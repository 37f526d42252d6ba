"""Ready-made models: tiny random-weight builds for tests and demos."""

from .tiny import build_processor, build_tokenizer, tiny_qwen2_audio

__all__ = ["build_processor", "build_tokenizer", "tiny_qwen2_audio"]
