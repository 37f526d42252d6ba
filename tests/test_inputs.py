"""Bad input never gives a silently wrong answer."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

import audiolens as al
from audiolens.audio import AudioNote


def prep(model, clips, task, **kw):
    return model.prepare(clips, kw.pop("sr", 16000), task.prompt("P3"), **kw)


def test_other_sample_rate_is_resampled(tiny_model, clips, gender_task):
    from scipy.signal import resample_poly

    at_44k = resample_poly(clips[0], 441, 160).astype(np.float32)
    with pytest.warns(AudioNote, match="44100 Hz -> 16000 Hz"):
        b44 = prep(tiny_model, [at_44k], gender_task, sr=44100)
    b16 = prep(tiny_model, [clips[0]], gender_task)
    assert torch.equal(b44.inputs["input_ids"], b16.inputs["input_ids"])
    # Up- then down-sampling a band-limited clip gives back nearly the same features.
    diff = (b44.inputs["input_features"] - b16.inputs["input_features"]).abs().mean()
    assert diff < 0.05


def test_stereo_is_mixed_down(tiny_model, clips, gender_task):
    stereo = np.stack([clips[0], clips[0] * 0.5], axis=1)
    with pytest.warns(AudioNote, match="2 channels"):
        b = prep(tiny_model, [stereo], gender_task)
    mono = prep(tiny_model, [clips[0] * 0.75], gender_task)
    torch.testing.assert_close(b.inputs["input_features"], mono.inputs["input_features"])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf, 0.2] * 100, dtype=np.float32), "infinite"),
    ],
)
def test_broken_clips_raise_naming_the_clip(tiny_model, clips, gender_task, bad, message):
    with pytest.raises(al.AudioError, match=rf"clip 'bad_one'.*{message}"):
        prep(tiny_model, [clips[0], bad], gender_task, ids=["fine", "bad_one"])


def test_too_long_clip_raises_unless_truncated(tiny_model, gender_task):
    long = np.full(16000 * 4, 0.1, dtype=np.float32)  # the tiny processor's window is 3 s
    with pytest.raises(al.AudioError, match=r"longer than the model accepts \(3 s\)"):
        prep(tiny_model, [long], gender_task)
    with pytest.warns(AudioNote, match="truncating"):
        b = prep(tiny_model, [long], gender_task, truncate=True)
    assert int(b.spans["audio"].sum()) == 75


def test_label_outside_the_task_set(tiny_model, clips, gender_task):
    with pytest.raises(ValueError, match=r"\['robot'\] are not in the label set"):
        prep(tiny_model, clips[:2], gender_task, labels=["male", "robot"])
    with pytest.raises(ValueError, match="2 labels for 1 clips"):
        prep(tiny_model, clips[:1], gender_task, labels=["male", "female"])


def test_lens_refuses_batch_of_another_task(tiny_model, gender_batch):
    with pytest.raises(ValueError, match="differ"):
        al.LogitLens(al.sakura_task("language")).run(tiny_model, gender_batch)


def test_processor_without_chat_template(tiny_model, clips, gender_task):
    processor = copy.deepcopy(tiny_model.processor)
    processor.chat_template = None
    processor.tokenizer.chat_template = None
    model = al.HookedAudioLM.from_hf(tiny_model.hf_model, processor)
    with pytest.raises(ValueError, match="no chat template"):
        prep(model, clips[:1], gender_task)


def test_label_tokens_leading_space_and_bare(tiny_model):
    tok = tiny_model.tokenizer
    spaced = al.label_token_ids(tok, ["fear", "female"])
    assert tok.convert_ids_to_tokens(spaced) == ["Ġfear", "Ġfemale"]
    with pytest.raises(al.LabelTokenError, match=r"\['fear', 'female'\] all start with token 'f'"):
        al.label_token_ids(tok, ["fear", "female"], mode="bare")
    bare = al.label_token_ids(tok, ["male", "pig"], mode="bare")
    assert tok.convert_ids_to_tokens(bare) == ["male", "pig"]


def test_lens_with_bare_labels_runs(tiny_model, gender_batch, gender_task):
    res = al.LogitLens(gender_task, label_tokens="bare").run(tiny_model, gender_batch)
    tok = tiny_model.tokenizer
    assert res.label_token_ids == (tok("male")["input_ids"][0], tok("female")["input_ids"][0])


def test_architecture_errors_say_how_to_fix(tiny_model):
    bad = dataclasses.replace(al.ARCHITECTURES["qwen2_audio"], layers="model.decoder.layers")
    with pytest.raises(al.ArchitectureError, match=r"no module 'model.decoder.layers' \(layers\).*architecture="):
        al.HookedAudioLM.from_hf(tiny_model.hf_model, tiny_model.processor, architecture=bad)
    with pytest.raises(al.ArchitectureError, match="no architecture registered for model_type 'not_a_model'"):
        from audiolens.architectures import architecture_for

        architecture_for("not_a_model")


def test_prompt_checks():
    with pytest.raises(ValueError, match="does not occur"):
        al.Prompt(prefix="The speaker's gender is", attribute_word="emotion")
    with pytest.raises(ValueError, match="unknown prompt format"):
        al.sakura_task("gender").prompt("P4")
    with pytest.raises(ValueError, match="unknown attribute"):
        al.sakura_task("height")
