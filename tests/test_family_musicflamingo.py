"""Music Flamingo: each clip's placeholder run sits between the sound boundary tokens, which
stay outside the ``"audio"`` span (masking hides the audio, not its markers)."""

import torch
from test_families import LABELS, family_clips

import audiolens as al


def test_audio_span_is_the_run_between_sound_markers():
    model = al.models.tiny("musicflamingo", n_layers=1)
    task = al.sakura_task("gender")
    batch = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    tok = model.tokenizer
    bos, eos, sound = tok.convert_tokens_to_ids(["<|sound_bos|>", "<|sound_eos|>", "<sound>"])
    ids = batch.inputs["input_ids"]
    for row, span in zip(ids, batch.spans["audio"]):
        where = span.nonzero().flatten()
        first, last = int(where[0]), int(where[-1])
        assert torch.equal(where, torch.arange(first, last + 1))  # one contiguous run
        assert (row[first : last + 1] == sound).all()
        assert row[first - 1] == bos and row[last + 1] == eos
        assert int((row == bos).sum()) == int((row == eos).sum()) == 1
