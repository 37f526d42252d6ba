"""Qwen-Audio-Chat (``model_type`` ``qwen``): remote code ``QWenLMHeadModel``, loaded only with
``trust_remote_code=True``.

What the checkpoint's own code does, and what this adapter reads of it:

- decoder blocks ``transformer.h`` return tuples, their attention ``attn`` returns
  ``(output, present)``; the final norm ``transformer.ln_f`` is applied by the backbone
  ``transformer``; the head is ``lm_head``;
- the attention mask reaches each layer as an additive ``(batch, 1, 1, key)`` padding mask; the
  attention applies causality itself; rotary positions follow the token index (relative, so a
  left-padded row computes what it computes alone);
- the key/value cache is the legacy tuple, ``(key, value)`` per layer, positions on axis 1;
- text ``<audio>path</audio>`` becomes the audio-start id, N−2 audio-pad ids and the
  audio-end id, and the forward writes the audio encoder's N vectors over that whole span, only
  when it runs without a cache; the clips travel as the side input ``audio_info``;
- the tokenizer is tiktoken-based (slow, no offset mapping) and cannot tokenize a closed audio
  tag without ``audio_info``.

So the chat template here writes the audio as one audio-pad token, and :func:`encode` widens it
into start, N−2 pads and end: the ids the tokenizer makes of ``<audio>path</audio>``, with N and
the log-mel window from the checkpoint's own ``audio`` module (the rule of its
``process_audio``, without reading a file). Each clip's features stay a per-row tensor in the
batch; :func:`forward_inputs` assembles ``audio_info`` at call time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .base import (
    REMOTE_ENCODER,
    Architecture,
    ArchitectureError,
    UnsupportedModelError,
    causal_lm_at,
    hub_options,
    register,
    tuple_cache,
)
from .remote import importable, restore_unsaved_buffers
from .templates import chatml_template

if TYPE_CHECKING:
    from .base import WrappedModel
    from .inputs import Encoded

#: the tokenizer's audio-pad token; one of it marks the clip in a rendered prompt.
AUDIO_PAD = "[[[AUDIO:modality]]]"
#: per-row audio inputs in a batch, gathered into ``audio_info`` by :func:`forward_inputs`.
AUDIO_KEYS = ("input_audios", "input_audio_lengths", "audio_span_tokens")
#: what :func:`encode` and the processor need from the checkpoint's ``audio`` module.
AUDIO_MODULE_NAMES = ("SAMPLE_RATE", "N_SAMPLES", "HOP_LENGTH", "pad_or_trim", "log_mel_spectrogram",
                      "get_T_after_cnn")


def default_chat_template() -> str:
    """Qwen-Audio-Chat's ChatML (its ``make_context``): the default system turn, then
    ``Audio 1:<clip>\\n`` and the question in the user turn."""
    return chatml_template("Audio {{ audio_count.value }}:" + AUDIO_PAD + "\n")


@dataclass(frozen=True)
class AudioWindow:
    """The sampling rate and window the library reads from a processor's feature extractor."""

    sampling_rate: int
    n_samples: int


class QwenAudioProcessor:
    """Qwen-Audio-Chat's input side: its tokenizer, its ``audio`` module, a chat template.

    Args:
        tokenizer: the checkpoint's tokenizer (``AutoTokenizer``, remote code).
        audio: the checkpoint's ``audio`` module (log-mel features and the encoder's length rule).
        chat_template: defaults to :func:`default_chat_template`.

    Example:
        >>> proc = QwenAudioProcessor(tokenizer, audio_module)  # doctest: +SKIP
        >>> mel, frames, n_tokens = proc.audio_features(np.zeros(16000, "float32"))  # doctest: +SKIP
        >>> n_tokens  # 25 per second  # doctest: +SKIP
        25
    """

    def __init__(self, tokenizer: Any, audio: ModuleType, chat_template: str | None = None) -> None:
        missing = [name for name in AUDIO_MODULE_NAMES if not hasattr(audio, name)]
        if missing:
            raise ArchitectureError(
                f"qwen: the checkpoint's audio module {audio.__name__} lacks {missing}; this "
                "adapter follows Qwen-Audio's audio.py"
            )
        self.tokenizer = tokenizer
        self.audio = audio
        self.chat_template = chat_template or default_chat_template()
        self.feature_extractor = AudioWindow(int(audio.SAMPLE_RATE), int(audio.N_SAMPLES))

    def apply_chat_template(self, messages: list[dict], **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, **kwargs)

    def audio_features(self, wave: np.ndarray) -> tuple[Tensor, int, int]:
        """The log-mel window of one clip, its frame count after the encoder's convolutions, and
        its number of audio vectors (the span holds two more: start and end)."""
        audio = self.audio
        samples = min(len(wave), int(audio.N_SAMPLES))
        frames = int(audio.get_T_after_cnn(samples // int(audio.HOP_LENGTH)))
        mel = torch.as_tensor(audio.log_mel_spectrogram(
            audio.pad_or_trim(np.asarray(wave, dtype=np.float32).ravel()))).clone()
        # The encoder reads 2 x frames mel frames of a clip alone, its convolutions padding with
        # zeros; in a batch it reads up to the longest clip's. Zeros past this clip's frames give
        # each row of a batch what it gets alone.
        mel[:, 2 * frames:] = 0
        n_vectors = (frames - 2) // 2 + 1  # the encoder's 2-wide average pooling
        return mel, frames, n_vectors


def audio_span_ids(config: Any) -> tuple[int, int]:
    """The audio-start and audio-end ids the forward looks for (end = start + 1)."""
    audio = getattr(config, "audio", None)
    if not isinstance(audio, dict) or "audio_start_id" not in audio:
        raise UnsupportedModelError(
            "qwen: this checkpoint's config has no audio section (config.audio.audio_start_id); "
            "it is a text-only Qwen, with no audio to probe"
        )
    start = int(audio["audio_start_id"])
    return start, start + 1


def _padding_id(tokenizer: Any) -> int:
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            return value
    return int(tokenizer.convert_tokens_to_ids("<|endoftext|>"))


def encode(model: WrappedModel, texts: list[str], waves: list[np.ndarray]) -> Encoded:
    """Token ids with each clip's span (start, N−2 pads, end), left-padded, plus the clips'
    log-mel windows, frame counts and span lengths as per-row tensors.

    Example:
        >>> batch = model.prepare([wav], 16000, task.prompt("P3"))  # doctest: +SKIP
        >>> batch.inputs["audio_span_tokens"]  # N = 25 per second + 2  # doctest: +SKIP
        tensor([27])
    """
    from .inputs import Encoded, left_pad

    proc, tok = model.processor, model.tokenizer
    marker = model.audio_token_id
    start, end = audio_span_ids(model.hf_model.config)
    rows, spans, mels, lengths = [], [], [], []
    for text, wave in zip(texts, waves):
        mel, frames, n_vectors = proc.audio_features(wave)
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if ids.count(marker) != 1:
            raise ValueError(f"qwen: each prompt must hold one {AUDIO_PAD!r} (the clip), found {ids.count(marker)}")
        at = ids.index(marker)
        ids[at:at + 1] = [start] + [marker] * n_vectors + [end]
        rows.append(ids)
        spans.append((at, at + n_vectors + 2))
        mels.append(mel)
        lengths.append([frames, n_vectors])
    input_ids, attention_mask, masks = left_pad(
        [torch.tensor(ids, dtype=torch.long) for ids in rows], {"audio": spans}, fill=_padding_id(tok))
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "input_audios": torch.stack(mels),
        "input_audio_lengths": torch.tensor(lengths, dtype=torch.int32),
        "audio_span_tokens": torch.tensor([b - a for a, b in spans], dtype=torch.long),
    }
    return Encoded(inputs=inputs, spans=masks)


def forward_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The per-row audio tensors as the forward's ``audio_info``; a step that continues a cache
    carries none (the forward reads audio only without a cache)."""
    if not any(key in inputs for key in AUDIO_KEYS):
        return inputs
    missing = [key for key in AUDIO_KEYS if key not in inputs]
    if missing:
        raise ValueError(f"qwen: audio inputs {missing} missing (prepare batches with model.prepare)")
    audios, lengths, spans = (inputs.pop(key) for key in AUDIO_KEYS)
    inputs["audio_info"] = {
        "input_audios": audios,
        "input_audio_lengths": lengths,
        "audio_span_tokens": [int(n) for n in spans],
    }
    return inputs


# ------------------------------------------------------------------ loading
def _get_head_mask(self: nn.Module, head_mask: Tensor | None, num_hidden_layers: int,
                   is_attention_chunked: bool = False) -> list[None]:
    """transformers 4's ``PreTrainedModel.get_head_mask`` for ``head_mask=None`` (no masking)."""
    if head_mask is not None:
        raise NotImplementedError("head masks are not supported on Qwen-Audio under transformers 5")
    return [None] * num_hidden_layers


def _use_return_dict(self: Any) -> bool:
    return bool(getattr(self, "return_dict", True))


def patch_removed_members(hf_model: nn.Module) -> list[str]:
    """Add back, on the checkpoint's own classes and only where missing, the two members of
    transformers 4 its forward calls: ``get_head_mask`` on the backbone's class (removed in
    transformers 5; it returns one ``None`` per layer when no head mask is given) and
    ``use_return_dict`` on the config class (deprecated, reads ``return_dict``). Returns what
    was added.

    Apply it to a model loaded without :meth:`HookedAudioLM.from_pretrained` before wrapping it
    with ``from_hf``.

    Example:
        >>> patch_removed_members(hf_model)  # doctest: +SKIP
        ['QWenModel.get_head_mask']
    """
    added = []
    backbone: Any = type(hf_model.get_submodule(QWEN_AUDIO.backbone))  # remote code, patched
    if not hasattr(backbone, "get_head_mask"):
        backbone.get_head_mask = _get_head_mask
        added.append(f"{backbone.__name__}.get_head_mask")
    config_class: Any = type(hf_model.config)
    if not hasattr(config_class, "use_return_dict"):
        config_class.use_return_dict = property(_use_return_dict)
        added.append(f"{config_class.__name__}.use_return_dict")
    return added


def audio_module(hf_model: nn.Module) -> ModuleType:
    """The ``audio`` module shipped beside the checkpoint's modeling code."""
    package = type(hf_model).__module__.rpartition(".")[0]
    try:
        return importlib.import_module(f"{package}.audio")
    except ImportError as exc:
        raise ArchitectureError(
            f"qwen: no audio module beside {type(hf_model).__module__}; Qwen-Audio checkpoints "
            "ship audio.py with their modeling code"
        ) from exc


_PRECISION_FLAGS = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
#: packages the modeling code imports only inside methods this library never calls
#: (``chat_stream`` imports ``transformers_stream_generator``, which fails under transformers 5).
CALL_TIME_IMPORTS = ("transformers_stream_generator",)


def load(name_or_path: str, **kwargs: Any) -> tuple[nn.Module, QwenAudioProcessor]:
    """Load the checkpoint with its own code, make it run under transformers 5 (see
    :mod:`audiolens.architectures.remote` and :func:`patch_removed_members`), and build the
    processor from its tokenizer and audio module."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if kwargs.pop("attn_implementation", None) is not None:
        raise ValueError("qwen: the checkpoint's own code chooses its attention; drop attn_implementation")
    hub = hub_options(kwargs)
    audio_span_ids(AutoConfig.from_pretrained(name_or_path, **hub))  # a text-only Qwen fails here
    dtype = kwargs.get("dtype")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    if dtype in _PRECISION_FLAGS and not set(_PRECISION_FLAGS.values()) & set(kwargs):
        # The model casts itself by these config flags (one of them at most), not by dtype.
        kwargs.update({flag: flag == _PRECISION_FLAGS[dtype] for flag in _PRECISION_FLAGS.values()})
        kwargs["dtype"] = dtype
    with importable(CALL_TIME_IMPORTS):
        hf_model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    restore_unsaved_buffers(hf_model)  # its attention scales queries by one (logn_tensor)
    patch_removed_members(hf_model)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **hub)
    return hf_model, QwenAudioProcessor(tokenizer, audio_module(hf_model))


QWEN_AUDIO = register(Architecture(
    name="qwen",
    hf_class="AutoModelForCausalLM",
    **causal_lm_at(backbone="transformer", layers="h", norm="ln_f"),
    attention="attn",
    attn_output_proj="c_proj",
    audio_token=AUDIO_PAD,
    audio_token_id_keys=(),
    tokens_per_second=25.0,
    remote_code=True,
    encode=encode,
    forward_inputs=forward_inputs,
    kv_cache=tuple_cache(seq_dim=1),
    load=load,
    encoder_unavailable=REMOTE_ENCODER,
))
