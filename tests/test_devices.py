"""Models split across devices: every hook moves what it indexes or adds to the activation's
device. Runs only where a GPU is present (CPU + CUDA split)."""

import pytest
import torch

import audiolens as al

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for a CPU + CUDA split")


@cuda
def test_cpu_cuda_split_gives_the_same_numbers(clips, gender_task):
    from accelerate import dispatch_model

    ref_model = al.models.tiny_qwen2_audio(seed=0)
    batch = ref_model.prepare(clips, 16000, gender_task.prompt("P3"), labels=["male", "female", "female", "male"])
    lens = al.LogitLens(gender_task)
    variants = {"none": [], "mask": [al.AudioMask()], "enrich": [al.Enrich(source_layer=1, scale=0.5, target_layer=4)]}
    expected = lens.run_many(ref_model, batch, variants)

    hf = al.models.tiny_qwen2_audio(seed=0).hf_model
    device_map = {"model.audio_tower": "cpu", "model.multi_modal_projector": "cpu",
                  "model.language_model.embed_tokens": "cpu", "model.language_model.rotary_emb": "cpu",
                  "model.language_model.layers.0": "cpu", "model.language_model.layers.1": "cpu",
                  "model.language_model.layers.2": 0, "model.language_model.layers.3": 0,
                  "model.language_model.norm": 0, "lm_head": 0}
    split = al.HookedAudioLM.from_hf(dispatch_model(hf, device_map=device_map), ref_model.processor)
    got = lens.run_many(split, batch, variants)
    for name in variants:
        torch.testing.assert_close(got[name].label_logits, expected[name].label_logits, atol=1e-4, rtol=1e-4)
    for name, ivs in variants.items():  # separate runs and the nnsight backend too
        torch.testing.assert_close(lens.run(split, batch, ivs).label_logits, expected[name].label_logits,
                                   atol=1e-4, rtol=1e-4)
