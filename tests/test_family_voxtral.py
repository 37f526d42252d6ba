"""Voxtral quirks: audio only through the chat template, fixed encoder windows, the placeholder
id, and (where mistral-common is installed) the real ``VoxtralProcessor`` path.

The real-processor test builds a small tekken tokenizer offline from the vocabulary mistral-common
ships (its first 1000 byte-pair ranks, Voxtral's control tokens, an audio section with the tiny
model's 4-s chunk) and checks the library's batches against mistral-common's own encoding of the
same conversation.
"""

import json

import family_checks as fc
import numpy as np
import pytest
import torch
from test_families import family_clips

import audiolens as al
from audiolens.architectures import voxtral


@pytest.fixture(scope="module")
def model():
    m = al.models.tiny("voxtral", seed=0)
    fc.randomize_norm_gains(m.hf_model)
    return m


def test_layout_and_fixed_audio_tokens(model):
    prompt = al.sakura_task("gender").prompt("P3")
    text = voxtral.render(model.processor, prompt)
    assert text == f"<s>[INST][BEGIN_AUDIO][AUDIO]{prompt.question}[/INST]{prompt.prefix}"
    assert voxtral.split_rendered(text) == (prompt.question, prompt.prefix)
    batch = model.prepare(family_clips(), 16000, prompt)
    audio = model.hf_model.config.audio_config
    per_window = audio.max_source_positions * audio.hidden_size // audio.intermediate_size
    assert batch.spans["audio"].sum(1).tolist() == [per_window] * 3
    assert batch.inputs["input_features"].shape == (3, audio.num_mel_bins, 2 * audio.max_source_positions)


def test_clip_longer_than_one_window_is_refused(model):
    long = np.zeros(int(16000 * (model.max_audio_seconds + 1)), dtype=np.float32) + 0.1
    with pytest.raises(ValueError, match="long"):
        model.prepare([long], 16000, al.sakura_task("gender").prompt("P3"))


def test_split_rendered_rejects_other_text():
    with pytest.raises(ValueError, match="Voxtral"):
        voxtral.split_rendered("<|im_start|>user\nhello")


def _tekken_folder(tmp_path, chunk_seconds: float) -> str:
    """A tekken.json with 1000 byte-pair ranks, 100 control tokens ([AUDIO] = 24 as in Voxtral)
    and an audio section whose chunk is ``chunk_seconds``."""
    from importlib.resources import files

    src = json.loads((files("mistral_common") / "data" / "tekken_240911.json").read_text())
    names = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
             "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
             "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
             "[TOOL_CONTENT]", "[ARGS]", "[CALL_ID]", "<SPECIAL_22>", "<SPECIAL_23>", "[AUDIO]",
             "[BEGIN_AUDIO]", "[TRANSCRIBE]"]
    tekken = {
        "config": {**src["config"], "default_vocab_size": 1100, "default_num_special_tokens": 100,
                   "version": "v11"},
        "vocab": src["vocab"][:1000],
        "special_tokens": [{"rank": i, "token_str": t, "is_control": True} for i, t in enumerate(names)],
        "audio": {"sampling_rate": 16000, "frame_rate": 12.5, "chunk_length_s": chunk_seconds,
                  "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400}},
    }
    (tmp_path / "tekken.json").write_text(json.dumps(tekken))
    return str(tmp_path)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A tiny Voxtral behind the real VoxtralProcessor (mistral-common tokenizer)."""
    pytest.importorskip("mistral_common")
    pytest.importorskip("soxr")
    from transformers import (
        MistralCommonBackend,
        VoxtralConfig,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )

    from audiolens.models.tiny.common import seeded

    tiny = al.models.tiny("voxtral", seed=0)
    window = tiny.max_audio_seconds
    tok = MistralCommonBackend.from_pretrained(_tekken_folder(tmp_path_factory.mktemp("tekken"), window))
    processor = VoxtralProcessor(WhisperFeatureExtractor(feature_size=128, chunk_length=int(window)), tok)
    config = VoxtralConfig(
        audio_config=tiny.hf_model.config.audio_config.to_dict(),
        text_config={**tiny.hf_model.config.text_config.to_dict(), "vocab_size": len(tok),
                     "pad_token_id": 11, "bos_token_id": 1, "eos_token_id": 2},
        audio_token_id=processor.audio_token_id,
    )
    hf = seeded(0, VoxtralForConditionalGeneration, config)
    fc.randomize_norm_gains(hf)
    return al.HookedAudioLM.from_hf(hf, processor)


def test_real_processor_rows_equal_mistral_common_encoding(real):
    """Each row of a batch prepared through VoxtralProcessor.apply_chat_template equals the
    model's own forward on mistral-common's direct encoding of the same conversation (audio,
    question, the prefix as an assistant turn to continue) with Whisper features."""
    from mistral_common.protocol.instruct.chunk import AudioChunk, RawAudio, TextChunk
    from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.audio import Audio

    task = al.sakura_task("gender")
    prompt = task.prompt("P3")
    clips = family_clips()
    batch = real.prepare(clips, 16000, prompt, labels=["male", "female", "female"])
    res = al.LogitLens(task).run(real, batch)
    assert batch.spans["audio"].sum(1).tolist() == [50, 50, 50]
    mistral = real.tokenizer.tokenizer
    for i, clip in enumerate(clips):
        audio = Audio(clip.astype(np.float64), 16000, "wav")
        request = ChatCompletionRequest(messages=[
            UserMessage(content=[AudioChunk(input_audio=RawAudio.from_audio(audio)), TextChunk(text=prompt.question)]),
            AssistantMessage(content=prompt.prefix, prefix=True),
        ])
        encoded = mistral.encode_chat_completion(request)
        ids = torch.tensor([encoded.tokens])
        pad = batch.seq_len - int(batch.inputs["attention_mask"][i].sum())
        assert batch.inputs["input_ids"][i, pad:].tolist() == encoded.tokens
        feats = real.processor.feature_extractor(encoded.audios[0].audio_array, sampling_rate=16000,
                                                  return_tensors="pt")["input_features"]
        logits = fc.hf_forward(real, {"input_ids": ids, "input_features": feats}).logits[0, -1]
        torch.testing.assert_close(res.logits_at("last")[real.n_layers][i], logits[list(res.label_token_ids)],
                                   atol=fc.ATOL, rtol=1e-4)
    # The attribute position is the last token of the attribute word ("gender" = " g|end|er").
    attr = int(batch.positions["attribute"][0])
    upto = real.tokenizer.decode(batch.inputs["input_ids"][0, attr - 2: attr + 1])
    assert upto.strip() == prompt.attribute_word


@pytest.mark.parametrize("check", fc.CHECKS, ids=lambda f: f.__name__)
def test_real_processor_family_checks(real, check):
    task = al.sakura_task("gender")
    batch = real.prepare(family_clips(), 16000, task.prompt("P3"), labels=["male", "female", "female"])
    check(real, batch, task)
