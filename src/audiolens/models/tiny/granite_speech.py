"""Tiny random-weight Granite Speech, with an offline stand-in for its feature extractor.

Granite Speech's feature extractor builds ``torchaudio.transforms.MelSpectrogram``, and no
torchaudio build matches the installed torch, so :class:`GraniteMelFeatures` computes the same
features with ``torch.stft`` and the HTK mel filter bank of :mod:`transformers.audio_utils`
(checked against the real extractor in the tests). The decoder is Granite's, with its scaled
residual branches (``residual_multiplier``), embedding multiplier and logit scaling set to the
non-trivial values real checkpoints use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .common import seeded, train_tokenizer
from .processor import PlaceholderProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from ...hooked import HookedAudioLM

AUDIO_TOKEN = "<|audio|>"
SPECIAL_TOKENS = ("<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", AUDIO_TOKEN)

# Granite's chat template: string contents (the audio token is written into the user text),
# a default system turn, and the assistant header as the generation prompt.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set system_message = 'You are Granite, developed by IBM. You are a helpful AI assistant.' %}"
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{{- '<|start_of_role|>system<|end_of_role|>' + system_message + '<|end_of_text|>\n' }}"
    "{%- for message in loop_messages %}"
    "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}"
)


class GraniteMelFeatures:
    """Granite Speech's audio features without torchaudio: log-mel frames stacked in pairs.

    Same arguments and outputs as ``GraniteSpeechFeatureExtractor``: clips are right-padded with
    zeros to the longest, turned into an HTK mel power spectrogram (centred, reflect-padded Hann
    STFT), ``log10``-compressed with a floor 8 decades below each clip's maximum, scaled to
    ``x / 4 + 1``, cut to an even frame count and stacked two frames at a time.

    Example:
        >>> fe = GraniteMelFeatures()
        >>> out = fe([np.zeros(16000, dtype="float32") + 0.1])
        >>> out["input_features"].shape, fe.audio_embed_sizes([16000])
        (torch.Size([1, 50, 160]), [12])
    """

    def __init__(
        self,
        sampling_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int = 80,
        projector_window_size: int = 15,
        projector_downsample_rate: int = 5,
    ) -> None:
        from transformers.audio_utils import mel_filter_bank

        self.sampling_rate = sampling_rate
        self.n_fft, self.win_length, self.hop_length, self.n_mels = n_fft, win_length, hop_length, n_mels
        self.projector_window_size = projector_window_size
        self.projector_downsample_rate = projector_downsample_rate
        self.mel_filters = torch.from_numpy(mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
            max_frequency=sampling_rate / 2, sampling_rate=sampling_rate, norm=None, mel_scale="htk",
        )).float()

    def mel_power(self, audio: Float[Tensor, "batch samples"]) -> Float[Tensor, "batch n_mels frames"]:
        """The mel power spectrogram (what ``torchaudio.transforms.MelSpectrogram`` returns)."""
        spec = torch.stft(
            audio.float(), n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=torch.hann_window(self.win_length), center=True, pad_mode="reflect",
            return_complex=True,
        ).abs().pow(2)
        return (spec.transpose(-1, -2) @ self.mel_filters).transpose(-1, -2)

    def audio_embed_sizes(self, lengths: Iterable[int]) -> list[int]:
        """Placeholder tokens per clip of ``lengths`` samples: the projector's output length
        (mel frames, halved by stacking, cut into projector windows of fixed output size)."""
        per_window = self.projector_window_size // self.projector_downsample_rate
        sizes = []
        for n in lengths:
            encoder_frames = (n // self.hop_length + 1) // 2
            sizes.append(math.ceil(encoder_frames / self.projector_window_size) * per_window)
        return sizes

    def __call__(self, waves: Sequence[np.ndarray]) -> dict[str, Tensor]:
        clips = [torch.as_tensor(np.asarray(w, dtype=np.float32)) for w in waves]
        audio = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
        with torch.no_grad():
            logmel = self.mel_power(audio).transpose(-1, -2).clamp(min=1e-10).log10()
            floor = logmel.amax(dim=(-2, -1), keepdim=True) - 8.0
            logmel = torch.maximum(logmel, floor) / 4 + 1
            if logmel.shape[1] % 2 == 1:
                logmel = logmel[:, :-1]
            stacked = logmel.reshape(len(clips), -1, 2 * self.n_mels)
        sizes = torch.tensor(self.audio_embed_sizes(len(c) for c in clips))
        mask = torch.arange(int(sizes.max()))[None, :] < sizes[:, None]
        return {"input_features": stacked, "input_features_mask": mask}


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE with Granite's role markers, ``<|audio|>`` and Granite's chat template."""
    return train_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, corpus=corpus, vocab_size=vocab_size,
                           eos_token="<|end_of_text|>")


def build_processor(tokenizer: PreTrainedTokenizerBase | None = None) -> PlaceholderProcessor:
    """An offline Granite Speech processor: :class:`GraniteMelFeatures` and one ``<|audio|>``
    per projector output frame."""
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    features = GraniteMelFeatures()
    return PlaceholderProcessor(
        tokenizer, features, AUDIO_TOKEN, features,
        n_audio_tokens=lambda feats: feats["input_features_mask"].sum(-1).tolist(),
    )


def tiny_granite_speech_config(
    processor: PlaceholderProcessor,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    n_heads: int = 4,
    residual_multiplier: float = 0.22,
    embedding_multiplier: float = 12.0,
    logits_scaling: float = 8.0,
    attn_implementation: str = "sdpa",
):
    """A small ``GraniteSpeechConfig`` matching ``processor``'s vocabulary and features."""
    from transformers import GraniteSpeechConfig

    tok = processor.tokenizer
    fe = processor.feature_extractor
    config = GraniteSpeechConfig(
        text_config={
            "model_type": "granite",
            "vocab_size": len(tok),
            "hidden_size": d_model,
            "intermediate_size": d_model * 2,
            "num_hidden_layers": n_layers,
            "num_attention_heads": n_heads,
            "num_key_value_heads": max(1, n_heads // 2),
            "max_position_embeddings": 1024,
            "residual_multiplier": residual_multiplier,
            "embedding_multiplier": embedding_multiplier,
            "logits_scaling": logits_scaling,
            "attention_multiplier": (d_model // n_heads) ** -0.5,
            "tie_word_embeddings": True,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
            "bos_token_id": tok.eos_token_id,
        },
        encoder_config={
            "input_dim": 2 * fe.n_mels,
            "num_layers": 2,
            "hidden_dim": 64,
            "num_heads": 4,
            "output_dim": 16,
            "context_size": 20,
            "max_pos_emb": 32,
            "conv_kernel_size": 5,
        },
        projector_config={
            "model_type": "blip_2_qformer",
            "hidden_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "encoder_hidden_size": 64,
            "cross_attention_frequency": 1,
        },
        window_size=fe.projector_window_size,
        downsample_rate=fe.projector_downsample_rate,
        audio_token_index=tok.convert_tokens_to_ids(AUDIO_TOKEN),
        has_lora_adapter=False,
    )
    for cfg in (config, config.text_config, config.encoder_config, config.projector_config):
        cfg._attn_implementation = attn_implementation
    return config


def tiny_granite_speech(
    seed: int = 0,
    *,
    n_layers: int = 4,
    d_model: int = 64,
    attn_implementation: str = "sdpa",
    device: str | torch.device = "cpu",
    **overrides,
) -> HookedAudioLM:
    """A random-weight Granite Speech wrapped as a HookedAudioLM (``overrides`` go to the config:
    ``residual_multiplier``, ``embedding_multiplier``, ``logits_scaling``, ``n_heads``).

    Example:
        >>> model = tiny_granite_speech(seed=0)
        >>> model.n_layers, model.cfg.residual_multiplier
        (4, 0.22)
    """
    from transformers import GraniteSpeechForConditionalGeneration

    from ...hooked import HookedAudioLM

    processor = build_processor()
    config = tiny_granite_speech_config(
        processor, n_layers=n_layers, d_model=d_model, attn_implementation=attn_implementation, **overrides
    )
    hf_model = seeded(seed, GraniteSpeechForConditionalGeneration, config)
    return HookedAudioLM.from_hf(hf_model.to(device), processor)
