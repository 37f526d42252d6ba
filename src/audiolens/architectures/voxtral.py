"""Voxtral (``voxtral``): Whisper encoder over fixed 30-s chunks, projector, Llama-style decoder.

Audio enters only through the processor's ``apply_chat_template`` (mistral-common tokenizes the
conversation and writes ``[BEGIN_AUDIO]`` and one ``[AUDIO]`` per audio token); the processor's
``__call__`` refuses the audio token. Rows are rendered in Voxtral's instruct layout
``<s>[INST][BEGIN_AUDIO][AUDIO]question[/INST]prefix``; with the real processor, :func:`encode`
reads the question and prefix back from that text and hands the processor the conversation
(audio, question, then the prefix as an assistant turn to continue). The encoder takes exactly
``2 × max_source_positions`` mel frames per chunk; a clip longer than one chunk would give its
row several feature rows, so clips are limited to one chunk (the feature extractor's window).

``encoder.hook_out`` is the tower's output (after its final norm), one row per encoder frame; the
model then joins four consecutive frames into one projector input row. The projector's output is
flat (all audio tokens of the batch); ``projector.hook_out`` shows it as (batch, tokens, d_model).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from ..tasks import Prompt
from .base import Architecture, register, whisper_tower
from .inputs import Encoded, processor_encode, render_prompt

if TYPE_CHECKING:
    from .base import WrappedModel

BEGIN_INST, END_INST, BEGIN_AUDIO, AUDIO = "[INST]", "[/INST]", "[BEGIN_AUDIO]", "[AUDIO]"


def _uses_mistral_common(processor: Any) -> bool:
    """True for the real ``VoxtralProcessor`` (mistral-common tokenizer, no Jinja template)."""
    from transformers import VoxtralProcessor

    return isinstance(processor, VoxtralProcessor)


def render(processor: Any, prompt: Prompt) -> str:
    """One row's text in Voxtral's instruct layout, ending with the probing prefix.

    Processors with a chat template (the offline build) render it themselves; mistral-common
    has no text template, so the layout is written here (it is only read back by
    :func:`encode` and used to locate the attribute word from the end).
    """
    if not _uses_mistral_common(processor):
        return render_prompt(processor, prompt)
    return f"<s>{BEGIN_INST}{BEGIN_AUDIO}{AUDIO}{prompt.question or ''}{END_INST}{prompt.prefix}"


def split_rendered(text: str) -> tuple[str, str]:
    """``(question, prefix)`` back from a row rendered by :func:`render`.

    Example:
        >>> split_rendered("<s>[INST][BEGIN_AUDIO][AUDIO]Who speaks?[/INST]The speaker is")
        ('Who speaks?', 'The speaker is')
    """
    if END_INST not in text or AUDIO not in text:
        raise ValueError(f"not a Voxtral instruct row with audio: {text!r}")
    user, prefix = text.rsplit(END_INST, 1)
    return user.rsplit(AUDIO, 1)[1], prefix


def _wav_base64(wave: np.ndarray, rate: int) -> str:
    """The clip as a base64 float WAV (mistral-common takes audio as files; float keeps it exact)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode(model: WrappedModel, texts: list[str], waves: list[np.ndarray]) -> Encoded:
    """Inputs through ``VoxtralProcessor.apply_chat_template`` (real checkpoints) or the
    offline processor's placeholder expansion (tiny builds)."""
    processor = model.processor
    if not _uses_mistral_common(processor):
        return processor_encode(model, texts, waves)
    conversations = []
    for text, wave in zip(texts, waves):
        question, prefix = split_rendered(text)
        user: list[dict] = [{"type": "audio", "base64": _wav_base64(wave, model.sampling_rate)}]
        if question:
            user.append({"type": "text", "text": question})
        conversations.append([{"role": "user", "content": user}, {"role": "assistant", "content": prefix}])
    # The chunk the encoder takes, from the model's own config (the processor's defaults are
    # those of the released checkpoints).
    config: Any = model.hf_model.config
    frames = 2 * config.audio_config.max_source_positions
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = processor.apply_chat_template(
            conversations, continue_final_message=True, tokenize=True, return_dict=True,
            return_tensors="pt",
            processor_kwargs={
                "text_kwargs": {"padding": True},
                "audio_kwargs": {"max_source_positions": frames,
                                 "pad_to_multiple_of": frames * processor.feature_extractor.hop_length},
            },
        )
    finally:
        tokenizer.padding_side = side
    inputs = {k: v for k, v in enc.items() if isinstance(v, Tensor)}
    if inputs["input_features"].shape[0] != len(texts):
        raise ValueError(
            f"{inputs['input_features'].shape[0]} audio chunks for {len(texts)} clips: each clip must "
            "fit one encoder window"
        )
    assert model.audio_token_id is not None  # Voxtral marks audio with a placeholder token
    return Encoded(inputs=inputs, spans={"audio": inputs["input_ids"] == model.audio_token_id})


VOXTRAL = register(Architecture(
    name="voxtral",
    hf_class="VoxtralForConditionalGeneration",
    audio_token=AUDIO,
    render=render,
    encode=encode,
    # The encoder has no padding mask: a clip's frames are counted from its own length, and the
    # audio rows the decoder sees past the clip's end (the chunk's silence) are not audio.
    **whisper_tower(merge=4),
))
