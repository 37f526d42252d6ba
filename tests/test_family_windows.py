"""Audio windows and placeholder counts of Audio Flamingo 3, Music Flamingo, GLM-ASR and
Qwen3-ASR, against the real extractors' windows and each family's published length rule
worked out by hand."""

import family_checks as fc
import pytest
import torch
from test_families import LABELS, family_clips
from transformers import WhisperFeatureExtractor

import audiolens as al
from audiolens.architectures.inputs import render_prompt

HOP = 160  # 10 ms mel frames at 16 kHz in every family here
WHISPER_WINDOW = ["audioflamingo3", "musicflamingo", "glmasr"]


def frames(n_samples: int) -> int:
    return -(-n_samples // HOP)  # a partial hop still gives a frame


def flamingo_tokens(f: int) -> int:
    conv = (f - 1) // 2 + 1  # stride-2 convolution
    return (conv - 2) // 2 + 1  # average pooling by 2


def glmasr_tokens(f: int) -> int:
    conv = (f - 1) // 2 + 1  # stride-2 convolution (kernel 3, padding 1)
    return (conv - 4) // 4 + 1  # four frames merged per token


def qwen3_asr_tokens(f: int) -> int:
    full, rest = divmod(f, 100)  # 100-frame chunks give 13 tokens each
    for _ in range(3):  # three stride-2 convolutions on the last, partial chunk
        rest = (rest - 1) // 2 + 1 if rest else 0
    return 13 * full + rest


RULES = {"audioflamingo3": flamingo_tokens, "musicflamingo": flamingo_tokens,
         "glmasr": glmasr_tokens, "qwen3_asr": qwen3_asr_tokens}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices: two OpenMP threads on a busy two-core machine only wait on each other.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def task():
    return al.sakura_task("gender")


@pytest.mark.parametrize("family", sorted(RULES))
def test_placeholder_count_follows_the_family_length_rule(family, task):
    model = al.models.tiny(family, n_layers=1)
    clips = family_clips()
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=LABELS)
    expected = [RULES[family](frames(len(c))) for c in clips]
    assert batch.spans["audio"].sum(1).tolist() == expected
    assert batch.inputs["input_features_mask"].sum(1).tolist() == [frames(len(c)) for c in clips]


@pytest.mark.parametrize("family", WHISPER_WINDOW)
def test_features_fill_the_real_30s_window(family, task):
    """With the real checkpoints' extractor window (30 s, 3000 frames) and an encoder sized for
    it, every row gets the whole window, whatever its clip's length, and the model runs."""
    real = WhisperFeatureExtractor()  # the extractor the released checkpoints ship
    model = al.models.tiny(family, n_layers=2, window_seconds=real.chunk_length)
    fc.randomize_norm_gains(model.hf_model)
    assert model.max_audio_seconds == real.chunk_length
    batch = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    assert batch.inputs["input_features"].shape[-1] == real.nb_max_frames == 3000
    fc.lens_top_layer_equals_model_logits(model, batch, task)


def test_padding_that_reaches_the_extractor_breaks_the_real_window(task):
    """Why padding goes to the text alone: asked of the whole processor, it pads features to
    the longest clip, and an encoder with the real 1500-row position table refuses them."""
    model = al.models.tiny("audioflamingo3", n_layers=1, window_seconds=30)
    clips = family_clips()
    texts = [render_prompt(model.processor, task.prompt("P3"))] * len(clips)
    enc = model.processor(text=texts, audio=clips, sampling_rate=16000, padding=True)
    assert enc["input_features"].shape[-1] == max(frames(len(c)) for c in clips) < 3000
    with pytest.raises(RuntimeError, match="1500"), torch.no_grad():
        model.hf_model(**enc)


def test_qwen3_asr_pads_features_to_whole_encoder_chunks(task):
    """Qwen3-ASR's processor pads to the longest clip, rounded up to one encoder chunk
    (2 · n_window frames), not to a fixed window."""
    model = al.models.tiny("qwen3_asr", n_layers=1)
    chunk = 2 * model.hf_model.config.audio_config.n_window
    clips = family_clips()
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=LABELS)
    longest = max(frames(len(c)) for c in clips)
    assert batch.inputs["input_features"].shape[-1] == -(-longest // chunk) * chunk == 300
