"""Tiny checkpoints of the paper's two remote-code families, Qwen-Audio-Chat and DeSTA2.

Their modeling code lives on the hub, not in transformers, so a tiny build is a checkpoint
folder of a small structural *double*: a ``config.json`` whose ``auto_map`` points at modeling
code copied into the folder (the sources under ``qwen_audio/`` and ``desta2/``, which keep the
real code's layout, quirks and transformers-4 habits), random weights and tokenizer files. It
loads only with ``trust_remote_code=True``, the way a real checkpoint of the family does.

Example:
    >>> import audiolens as al
    >>> al.models.tiny("qwen", seed=0).architecture.name
    'qwen'
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ....hooked import HookedAudioLM

HERE = Path(__file__).parent


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1))


def _copy_sources(source: Path, folder: Path) -> None:
    for file in source.glob("*.py"):
        if file.name != "__init__.py":  # (there only so that the sources import as a package)
            shutil.copy(file, folder / file.name)


def qwen_audio_vocabulary() -> list[str]:
    """The double tokenizer's words: every piece of the prompts and labels."""
    from ..common import default_corpus

    piece = _module(HERE / "qwen_audio" / "qwen_double_tokenizer.py").PIECE
    words = {p for line in default_corpus() for p in piece.findall(line)}
    return sorted(words)


def save_qwen_audio(folder: Path, seed: int = 0, *, n_layers: int = 2, d_model: int = 64) -> Path:
    """A Qwen-Audio double checkpoint in ``folder`` (created)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    _copy_sources(HERE / "qwen_audio", folder)
    words = qwen_audio_vocabulary()
    _write_json(folder / "vocab.json", words)
    _write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "QwenDoubleTokenizer",
        "auto_map": {"AutoTokenizer": ["qwen_double_tokenizer.QwenDoubleTokenizer", None]},
    })
    n_words = 256 + len(words)  # specials follow: endoftext, im_start, im_end, pad, <audio>, </audio>
    _write_json(folder / "config.json", {
        "model_type": "qwen",
        "architectures": ["QwenDoubleLMHeadModel"],
        "auto_map": {"AutoConfig": "qwen_double_config.QwenDoubleConfig",
                     "AutoModelForCausalLM": "qwen_double_model.QwenDoubleLMHeadModel"},
        "vocab_size": n_words + 6,
        "hidden_size": d_model,
        "num_hidden_layers": n_layers,
        "num_attention_heads": 4,
        "intermediate_size": 2 * d_model,
        "audio": {"n_mels": 80, "n_state": 32, "output_dim": d_model, "audio_start_id": n_words + 4},
    })
    from ....architectures.qwen_audio import CALL_TIME_IMPORTS
    from ....architectures.remote import importable

    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    with torch.random.fork_rng(devices=[]), importable(CALL_TIME_IMPORTS):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=True)
    model.save_pretrained(folder)
    return folder


LLAMA3_SPECIALS = ("<|end_of_text|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# Llama-3-Instruct's shape: every turn "<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>",
# the first one after the BOS token.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
WHISPER_SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def _save_llama(folder: Path, seed: int, n_layers: int, d_model: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from ..common import seeded, train_tokenizer

    tok = train_tokenizer(LLAMA3_SPECIALS, LLAMA3_TEMPLATE, eos_token="<|eot_id|>")
    tok.bos_token = "<|begin_of_text|>"
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    llama: Any = seeded(seed, LlamaForCausalLM, config)
    llama.save_pretrained(folder)
    tok.save_pretrained(folder)


def _save_whisper(folder: Path, seed: int, window_seconds: int) -> None:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    from ..common import seeded, train_tokenizer

    tok = train_tokenizer(WHISPER_SPECIALS, "", eos_token="<|endoftext|>")
    features = WhisperFeatureExtractor(feature_size=80, chunk_length=window_seconds)
    start, end = tok.convert_tokens_to_ids("<|startoftranscript|>"), tok.eos_token_id
    config = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=features.nb_max_frames // 2, max_target_positions=32,
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end,
        init_std=0.5,  # random weights that still say different things for different clips
    )
    whisper: Any = seeded(seed, WhisperForConditionalGeneration, config)
    # Transcripts of whole words, so that they read as text and tokenize alike in the Llama.
    words = {i for i in range(len(tok)) if tok.decode([i]).replace(" ", "").isascii()
             and tok.decode([i]).replace(" ", "").isalpha()}
    whisper.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, max_new_tokens=6,
        suppress_tokens=[i for i in range(len(tok)) if i not in words and i != end])
    whisper.save_pretrained(folder)
    WhisperProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(folder)


def save_desta2(folder: Path, seed: int = 0, *, n_layers: int = 2, d_model: int = 64,
                window_seconds: int = 3) -> Path:
    """A DeSTA2 double checkpoint in ``folder`` (created): its Llama and Whisper in subfolders
    named by the configuration, as the real one names hub ids."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _copy_sources(HERE / "desta2", folder)
    _save_llama(folder / "llama", seed, n_layers, d_model)
    _save_whisper(folder / "whisper", seed + 1, window_seconds)
    settings = {"llama_model_id": str(folder / "llama"), "whisper_model_id": str(folder / "whisper"),
                "prompt_size": 64}
    _write_json(folder / "config.json", {
        "model_type": "DestaModel",
        "architectures": ["DestaDoubleModel"],
        "auto_map": {"AutoConfig": "desta_double.DestaDoubleConfig", "AutoModel": "desta_double.DestaDoubleModel"},
        **settings,
    })
    code = _module(folder / "desta_double.py")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        connector = code.Connector(code.DestaDoubleConfig(**settings))
    torch.save(connector.state_dict(), folder / "qformer_connector.pth")
    return folder


def _load_double(save: Any, seed: int, **overrides: Any) -> HookedAudioLM:
    """Save a double into a temporary folder and load it back as a real checkpoint loads."""
    from transformers.utils import logging

    from ....hooked import HookedAudioLM

    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # (a build in milliseconds: no "Writing model shards" bars)
    try:
        with tempfile.TemporaryDirectory(prefix="audiolens-tiny-") as tmp:
            folder = save(Path(tmp) / "checkpoint", seed, **overrides)
            return HookedAudioLM.from_pretrained(str(folder), trust_remote_code=True)
    finally:
        if bars:
            logging.enable_progress_bar()


def tiny_qwen_audio(seed: int = 0, *, n_layers: int = 2, d_model: int = 64) -> HookedAudioLM:
    """A random-weight Qwen-Audio-Chat double, loaded with ``trust_remote_code=True``."""
    return _load_double(save_qwen_audio, seed, n_layers=n_layers, d_model=d_model)


def tiny_desta2(seed: int = 0, *, n_layers: int = 2, d_model: int = 64, window_seconds: int = 3) -> HookedAudioLM:
    """A random-weight DeSTA2 double (Llama + Whisper + connector), loaded with
    ``trust_remote_code=True``."""
    return _load_double(save_desta2, seed, n_layers=n_layers, d_model=d_model, window_seconds=window_seconds)
