"""DeSTA2 (``model_type`` ``DestaModel``): remote code ``DestaModel``, loaded only with
``trust_remote_code=True``.

What the checkpoint's own code does, and what this adapter reads of it:

- ``speech_perception.whisper`` (a Whisper model) transcribes the clip with ``generate`` and
  returns every encoder layer's states; ``speech_perception.connector`` (a Q-Former) turns them
  into ``config.prompt_size`` (64) vectors in the language model's width;
  ``speech_perception.processor`` is Whisper's processor (features and transcript decoding);
- ``llama`` is a Llama-3 causal LM driven by ``inputs_embeds``: the prompt's chat template has an
  ``audio`` turn; the 64 vectors go where the audio sits in it, the transcript text right after
  them; there is no placeholder token; ``tokenizer`` is Llama-3's;
- the original runs one clip at a time.

:func:`encode` runs transcription and Q-Former once, at prepare time, for the whole batch, and
builds per-row ``inputs_embeds`` (left-padded) with spans ``"audio"`` (the 64 vectors) and
``"transcript"``. The paper masks both (footnote 4): ``masked_spans`` names them, and the
study's RQ4 mask covers them. Paths: decoder layers ``llama.model.layers``, final norm
``llama.model.norm``, head ``llama.lm_head``, backbone ``llama.model``.

One deviation from the released inference code: it tokenizes the rendered template with a
second BOS and inserts the vectors by a token count taken without it, one token before the end
of the audio turn's header. Here the template's text is tokenized as written (one BOS) and the
vectors go exactly where the audio sits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from .base import REMOTE_ENCODER, Architecture, causal_lm_at, register

if TYPE_CHECKING:
    from .base import WrappedModel
    from .inputs import Encoded

#: where a rendered prompt holds the clip; :func:`encode` splits the text there.
AUDIO_MARK = "<|audio|>"


def desta_messages(messages: list[dict]) -> list[dict]:
    """Chat messages in DeSTA2's shape: each audio item becomes its own ``audio`` turn (holding
    :data:`AUDIO_MARK`), the text items of a message stay in its role's turn after it.

    Example:
        >>> desta_messages([{"role": "user", "content": [{"type": "audio"},
        ...                                              {"type": "text", "text": "Who?"}]}])
        [{'role': 'audio', 'content': '<|audio|>'}, {'role': 'user', 'content': 'Who?'}]
    """
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append(message)
            continue
        texts = []
        for item in content:
            if item.get("type") == "audio" or "audio" in item:
                out.append({"role": "audio", "content": AUDIO_MARK})
            elif "text" in item:
                texts.append(item["text"])
        if texts:
            out.append({"role": message["role"], "content": "".join(texts)})
    return out


class DestaProcessor:
    """DeSTA2's input side: the Llama-3 tokenizer (with its chat template) and Whisper's
    processor (features of the clip, decoding of its transcript).

    Example:
        >>> proc = DestaProcessor(hf_model.tokenizer, hf_model.speech_perception.processor)  # doctest: +SKIP
    """

    def __init__(self, tokenizer: Any, transcriber: Any) -> None:
        self.tokenizer = tokenizer
        self.transcriber = transcriber
        self.feature_extractor = transcriber.feature_extractor

    @property
    def chat_template(self) -> str | None:
        return self.tokenizer.chat_template

    def apply_chat_template(self, messages: list[dict], **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(desta_messages(messages), **kwargs)


@torch.no_grad()
def perceive(model: WrappedModel, waves: list[np.ndarray]) -> tuple[list[str], Tensor]:
    """Whisper's transcripts and the Q-Former's vectors ``(batch, prompt_size, d_model)`` for a
    batch of clips, as the model's speech perception makes them for one clip."""
    perception: Any = model.hf_model.speech_perception  # remote-code submodule
    whisper = perception.whisper
    fe = model.processor.feature_extractor
    features = fe(waves, sampling_rate=fe.sampling_rate, return_tensors="pt").input_features
    out = whisper.generate(
        input_features=features.to(whisper.device, whisper.dtype),
        return_dict_in_generate=True, output_hidden_states=True,
    )
    transcripts = model.processor.transcriber.batch_decode(out.sequences, skip_special_tokens=True)
    return transcripts, perception.connector(out.encoder_hidden_states)


@torch.no_grad()
def encode(model: WrappedModel, texts: list[str], waves: list[np.ndarray]) -> Encoded:
    """Per-row ``inputs_embeds``: the prompt's token embeddings with the clip's Q-Former vectors
    and then its transcript where :data:`AUDIO_MARK` was; left-padded with zero vectors.

    Example:
        >>> batch = model.prepare([wav], 16000, task.prompt("P3"))  # doctest: +SKIP
        >>> batch.spans["audio"].sum(1), batch.spans["transcript"].sum(1)  # doctest: +SKIP
        (tensor([64]), tensor([9]))
    """
    from .inputs import Encoded, left_pad

    tok = model.tokenizer
    llama: Any = model.hf_model.llama  # remote-code submodule
    embed = llama.get_input_embeddings()
    transcripts, vectors = perceive(model, waves)

    def embedded(text: str) -> Tensor:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return embed(torch.tensor(ids, dtype=torch.long, device=embed.weight.device))

    rows, audio_spans, transcript_spans = [], [], []
    for text, transcript, audio in zip(texts, transcripts, vectors):
        if text.count(AUDIO_MARK) != 1:
            raise ValueError(f"DestaModel: each prompt must hold {AUDIO_MARK!r} once (the clip)")
        left, right = (embedded(part) for part in text.split(AUDIO_MARK))
        said = embedded(transcript)
        rows.append(torch.cat([left, audio.to(left.dtype), said, right]))
        audio_spans.append((len(left), len(left) + len(audio)))
        transcript_spans.append((len(left) + len(audio), len(left) + len(audio) + len(said)))
    inputs_embeds, attention_mask, spans = left_pad(
        rows, {"audio": audio_spans, "transcript": transcript_spans})
    return Encoded(inputs={"inputs_embeds": inputs_embeds, "attention_mask": attention_mask}, spans=spans)


def load(name_or_path: str, **kwargs: Any) -> tuple[nn.Module, DestaProcessor]:
    """Load the checkpoint with its own code (which loads Whisper and Llama-3 by the ids in its
    config) and build the processor from its tokenizer and Whisper processor. ``dtype`` casts
    the loaded model (the original loads Llama in bfloat16 and the rest in float32)."""
    from transformers import AutoModel

    if kwargs.pop("attn_implementation", None) is not None:
        raise ValueError("DestaModel: the checkpoint's own code loads its parts; drop attn_implementation")
    dtype = kwargs.pop("dtype", None)
    hf_model = AutoModel.from_pretrained(name_or_path, **kwargs)
    if dtype is not None and dtype != "auto":
        hf_model = hf_model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    return hf_model, DestaProcessor(hf_model.tokenizer, hf_model.speech_perception.processor)


DESTA2 = register(Architecture(
    name="DestaModel",
    hf_class="AutoModel",
    **causal_lm_at("llama"),
    audio_token_id_keys=(),
    remote_code=True,
    masked_spans=("audio", "transcript"),
    encode=encode,
    load=load,
    encoder_unavailable=REMOTE_ENCODER,
))
