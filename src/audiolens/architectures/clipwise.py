"""Input preparation for families whose audio encoder has no padding mask.

Some encoders (Granite Speech's conformer, Phi-4's) let the zero padding of shorter clips in a
batch reach the frames of those clips, so a batched forward gives each clip different audio
embeddings than it gets alone. For these families every row is prepared alone: the HF
processor encodes the row, the model's own embedding step merges its audio into the token
embeddings, and the rows are left-padded into one ``inputs_embeds`` batch. Each row then
computes exactly what it computes alone, and the decoder never re-runs the encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .base import CLIPWISE_ENCODER
from .inputs import Encoded, left_pad

if TYPE_CHECKING:
    from .base import WrappedModel

#: ``embed(hf_model, inputs) -> (1, seq, d_model)``: the model's merged token + audio embeddings
#: for one row's processor output, exactly as its forward builds them.
Embed = Callable[[torch.nn.Module, dict[str, Tensor]], Float[Tensor, "1 seq d_model"]]


def encode_clipwise(embed: Embed) -> Callable[[WrappedModel, list[str], list[np.ndarray]], Encoded]:
    """An ``encode`` that runs the processor and ``embed`` on each (text, clip) alone and
    left-pads the rows into ``inputs_embeds`` + ``attention_mask`` (on the CPU, like every batch).

    Example:
        >>> import audiolens as al, numpy as np
        >>> from audiolens.architectures.granite_speech import embed
        >>> model = al.models.tiny("granite_speech", seed=0)
        >>> text = model.architecture.render(model.processor, al.sakura_task("gender").prompt("P3"))
        >>> clips = [np.full(8000, 0.1, "float32"), np.full(16000, 0.1, "float32")]
        >>> enc = encode_clipwise(embed)(model, [text, text], clips)
        >>> enc.spans["audio"].sum(1).tolist(), enc.inputs["attention_mask"][:, 0].tolist()
        ([6, 12], [0, 1])
    """

    def encode(model: WrappedModel, texts: list[str], waves: list[np.ndarray]) -> Encoded:
        rows, audio = [], []
        for text, wave in zip(texts, waves):
            enc = model.processor(text=[text], audio=[wave], sampling_rate=model.sampling_rate,
                                  return_tensors="pt")
            inputs = {k: v.to(model.device) for k, v in enc.items() if isinstance(v, Tensor)}
            with torch.no_grad():
                rows.append(embed(model.hf_model, inputs)[0].cpu())
            assert model.audio_token_id is not None  # these families mark audio with a token
            audio.append(inputs["input_ids"][0].cpu() == model.audio_token_id)
        embeds, mask, spans = left_pad(rows, {"audio": audio})
        return Encoded(inputs={"inputs_embeds": embeds, "attention_mask": mask}, spans=spans)

    return encode


class ClipwiseAudio(TypedDict):
    """The :class:`~audiolens.architectures.base.Architecture` fields of a clip-by-clip family."""

    encode: Callable[[WrappedModel, list[str], list[np.ndarray]], Encoded]
    encoder_unavailable: str


def clipwise_audio(embed: Embed) -> ClipwiseAudio:
    """A family's ``encode`` (:func:`encode_clipwise` with ``embed``) and why it then offers no
    encoder hooks: the forward receives finished embeddings and never runs the encoder.

    Example:
        >>> from audiolens.architectures.base import CLIPWISE_ENCODER
        >>> clipwise_audio(lambda hf_model, inputs: inputs["x"])["encoder_unavailable"] == CLIPWISE_ENCODER
        True
    """
    return ClipwiseAudio(encode=encode_clipwise(embed), encoder_unavailable=CLIPWISE_ENCODER)
