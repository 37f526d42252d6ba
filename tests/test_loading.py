"""The real loading path (every family's round trip and TransformerLens's bridge as an
independent reference: tests/test_saved_families.py)."""

import pytest
import torch

import audiolens as al


@pytest.fixture(scope="module")
def saved_dir(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-qwen2-audio")
    tiny_model.hf_model.save_pretrained(path)
    tiny_model.processor.save_pretrained(path)
    return path


def test_from_pretrained_round_trip(tiny_model, saved_dir, gender_batch, gender_task):
    loaded = al.HookedAudioLM.from_pretrained(str(saved_dir))
    assert loaded.n_layers == tiny_model.n_layers
    assert loaded.architecture.name == "qwen2_audio"
    # The saved processor renders and tokenizes exactly as the in-memory one.
    clips_batch = loaded.prepare(
        [torch.zeros(16000) + 0.1], 16000, gender_task.prompt("P3"), labels=["female"]
    )
    same = tiny_model.prepare([torch.zeros(16000) + 0.1], 16000, gender_task.prompt("P3"), labels=["female"])
    assert torch.equal(clips_batch.inputs["input_ids"], same.inputs["input_ids"])
    torch.testing.assert_close(clips_batch.inputs["input_features"], same.inputs["input_features"])
    lens = al.LogitLens(gender_task)
    torch.testing.assert_close(
        lens.run(loaded, gender_batch).label_logits, lens.run(tiny_model, gender_batch).label_logits,
        rtol=0, atol=0,
    )


def test_from_pretrained_dtype(saved_dir, gender_batch, gender_task):
    half = al.HookedAudioLM.from_pretrained(str(saved_dir), torch_dtype=torch.bfloat16)
    assert half.W_U.dtype == torch.bfloat16
    res = al.LogitLens(gender_task).run(half, gender_batch)
    assert res.label_logits.dtype == torch.float32 and torch.isfinite(res.label_logits).all()


def test_with_auto_processor_pairs_the_model_with_the_saved_processor(tiny_model, saved_dir):
    from audiolens.architectures.base import with_auto_processor

    seen = {}

    def load_model(name, **kwargs):
        seen.update(name=name, kwargs=kwargs)
        return "the model"

    model, processor = with_auto_processor(load_model)(str(saved_dir), dtype="bfloat16", local_files_only=True)
    # every option reaches the model loader; the processor is the checkpoint's own
    assert model == "the model" and seen == {"name": str(saved_dir),
                                             "kwargs": {"dtype": "bfloat16", "local_files_only": True}}
    assert type(processor) is type(tiny_model.processor)
    assert processor.tokenizer.get_vocab() == tiny_model.processor.tokenizer.get_vocab()
