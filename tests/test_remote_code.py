"""The paper's remote-code models, Qwen-Audio-Chat and DeSTA2, on structural doubles saved as
checkpoint folders (``audiolens.models.tiny.remote``) and loaded with ``trust_remote_code=True``: every
family check, plus what is particular to each (input layout, spans, transformers 5 shims)."""

import importlib
import json
import shutil
import sys
from types import SimpleNamespace

import family_checks as fc
import pytest
import torch
from test_families import LABELS, family_clips
from transformers import AutoModelForCausalLM

import audiolens as al
from audiolens.architectures import architecture_for, qwen_audio
from audiolens.architectures.desta2 import AUDIO_MARK, perceive
from audiolens.architectures.inputs import render_prompt
from audiolens.architectures.remote import importable, restore_unsaved_buffers, unsaved_buffers
from audiolens.models.tiny.remote import save_desta2, save_qwen_audio
from audiolens.study.runner import default_interventions

DOUBLES = {"qwen": save_qwen_audio, "DestaModel": save_desta2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {name: save(tmp_path_factory.mktemp(f"{name}_ckpt")) for name, save in DOUBLES.items()}


@pytest.fixture(scope="module", params=sorted(DOUBLES))
def case(request, folders):
    model = al.HookedAudioLM.from_pretrained(str(folders[request.param]), trust_remote_code=True)
    fc.randomize_norm_gains(model.hf_model)
    task = al.sakura_task("gender")
    batch = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    return model, batch, task


@pytest.fixture(scope="module")
def qwen(folders):
    return al.HookedAudioLM.from_pretrained(str(folders["qwen"]), trust_remote_code=True)


@pytest.fixture(scope="module")
def desta(folders):
    model = al.HookedAudioLM.from_pretrained(str(folders["DestaModel"]), trust_remote_code=True)
    fc.randomize_norm_gains(model.hf_model)  # (with these gains the three clips' transcripts differ)
    return model


# ------------------------------------------------------------------ every family check
@pytest.mark.parametrize("check", fc.CHECKS, ids=lambda f: f.__name__)
def test_family_check(case, check):
    check(*case)


@pytest.mark.parametrize("check", fc.ENCODER_CHECKS, ids=lambda f: f.__name__)
def test_family_encoder(case, check):
    check(*case)  # remote-code towers refuse every encoder hook, with the reason


def test_resid_mid_is_exact(case):
    fc.resid_mid_is_exact(*case)


def test_padded_rows_equal_rows_alone(case):
    model, _, task = case
    fc.padded_rows_equal_rows_alone(model, family_clips(), task, LABELS)


def test_run_formats_equals_run_many(case):
    model, _, task = case
    fc.run_formats_equals_run_many(model, family_clips(), task, LABELS)


def test_nnsight_equals_hooks(case):
    fc.nnsight_equals_hooks(*case)


# ------------------------------------------------------------------ loading
@pytest.mark.parametrize("name", sorted(DOUBLES))
def test_loads_only_with_trust_remote_code(folders, name):
    with pytest.raises(al.ArchitectureError, match="trust_remote_code=True"):
        al.HookedAudioLM.from_pretrained(str(folders[name]))
    with pytest.raises(al.ArchitectureError, match="trust_remote_code=True"):
        al.HookedAudioLM.from_pretrained(str(folders[name]), trust_remote_code=False)


def test_remote_architecture_refused_without_the_flag_even_for_a_native_config(tmp_path):
    """A config transformers reads natively, described by a remote-code architecture."""
    tiny = al.models.tiny("qwen2_audio", seed=0)
    tiny.hf_model.save_pretrained(tmp_path)
    tiny.processor.save_pretrained(tmp_path)
    with pytest.raises(al.ArchitectureError, match="runs code shipped with the checkpoint"):
        al.HookedAudioLM.from_pretrained(str(tmp_path), architecture=qwen_audio.QWEN_AUDIO)


def test_text_only_qwen_refused(folders, tmp_path):
    folder = tmp_path / "text_only"
    shutil.copytree(folders["qwen"], folder)
    config = json.loads((folder / "config.json").read_text())
    del config["audio"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(al.UnsupportedModelError, match="text-only Qwen"):
        al.HookedAudioLM.from_pretrained(str(folder), trust_remote_code=True)


def test_qwen_dtype_sets_the_models_own_precision_flags(folders):
    model = al.HookedAudioLM.from_pretrained(str(folders["qwen"]), trust_remote_code=True,
                                             torch_dtype=torch.bfloat16)
    config = model.hf_model.config
    assert (config.bf16, config.fp16, config.fp32) == (True, False, False)
    assert model.W_U.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="attn_implementation"):
        al.HookedAudioLM.from_pretrained(str(folders["qwen"]), trust_remote_code=True,
                                         attn_implementation="eager")


def test_registered_by_model_type(qwen, desta):
    assert architecture_for(qwen.hf_model.config) is qwen_audio.QWEN_AUDIO
    assert al.ARCHITECTURES["DestaModel"] is desta.architecture
    assert qwen.architecture.remote_code and desta.architecture.remote_code


# ------------------------------------------------------------------ Qwen-Audio
def test_qwen_transformers5_shims(tmp_path):
    """Loaded plainly, the double fails where Qwen-Audio does under transformers 5; the shims
    make it run, and the buffer its checkpoint does not store holds the constructor's value."""
    folder = save_qwen_audio(tmp_path / "shim_ckpt")
    with importable(qwen_audio.CALL_TIME_IMPORTS) as placed:
        hf_model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    assert all(name not in sys.modules for name in placed)
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(AttributeError, match="get_head_mask"):
        hf_model(input_ids=ids)
    assert qwen_audio.patch_removed_members(hf_model) == ["QwenDoubleModel.get_head_mask"]
    assert qwen_audio.patch_removed_members(hf_model) == []  # only where missing
    assert "transformer.h.0.attn.query_scale" in unsaved_buffers(hf_model)
    with torch.no_grad():
        for layer in hf_model.transformer.h:
            layer.attn.query_scale.fill_(float("nan"))  # what uninitialized memory may hold
    assert "transformer.h.1.attn.query_scale" in restore_unsaved_buffers(hf_model)
    assert all(bool((layer.attn.query_scale == 1).all()) for layer in hf_model.transformer.h)
    assert torch.isfinite(hf_model(input_ids=ids).logits).all()


def test_qwen_use_return_dict_added_where_missing():
    class Config:
        return_dict = False

    class Backbone(torch.nn.Module):
        def get_head_mask(self, head_mask, n):
            return [None] * n

    model = SimpleNamespace(config=Config(), get_submodule=lambda path: Backbone())
    assert qwen_audio.patch_removed_members(model) == ["Config.use_return_dict"]
    assert model.config.use_return_dict is False


def test_qwen_call_time_imports_stay_unimportable(qwen):
    """The placeholder used while loading is gone: the method that needs the package still
    fails as it would have (here the package is missing or fails under transformers 5)."""
    try:
        importlib.import_module("transformers_stream_generator.main")
        works = True
    except ImportError:
        works = False
    leftover = sys.modules.get("transformers_stream_generator")
    assert leftover is None or getattr(leftover, "__file__", None)
    with pytest.raises(NotImplementedError if works else ImportError):
        qwen.hf_model.chat_stream()


def test_qwen_inputs_are_what_the_tokenizer_makes_of_an_audio_tag(qwen):
    task = al.sakura_task("gender")
    batch = qwen.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    tok = qwen.tokenizer
    assert not tok.is_fast
    text = render_prompt(qwen.processor, task.prompt("P3"))
    assert text.count(qwen_audio.AUDIO_PAD) == 1 and "Audio 1:" in text
    spans = batch.inputs["audio_span_tokens"].tolist()
    # 25 vectors per second (the double's audio module) plus audio-start and audio-end.
    assert spans == [int(25 * len(w) / 16000) + 2 for w in family_clips()]
    for row, span in enumerate(spans):
        tagged = text.replace(qwen_audio.AUDIO_PAD, "<audio>/clips/a.wav</audio>")
        expected = tok(tagged, add_special_tokens=False, audio_info={"audio_span_tokens": [span]})["input_ids"]
        real = batch.inputs["attention_mask"][row].bool()
        assert batch.inputs["input_ids"][row][real].tolist() == expected
        ids = batch.inputs["input_ids"][row]
        audio = ids[batch.spans["audio"][row]]
        assert audio[0] == tok.audio_start_id and audio[-1] == tok.audio_end_id
        assert (audio[1:-1] == tok.audio_pad_id).all() and len(audio) == span
        # The slow tokenizer has no offsets: the attribute word is found by decoding.
        assert tok.decode([int(ids[batch.positions["attribute"][row]])]) == " gender"


def test_qwen_audio_info_built_at_call_time(qwen):
    task = al.sakura_task("gender")
    batch = qwen.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS).subset([2, 0])
    kwargs = qwen.architecture.hf_kwargs(batch.inputs)
    assert not set(qwen_audio.AUDIO_KEYS) & set(kwargs)
    info = kwargs["audio_info"]
    assert info["audio_span_tokens"] == batch.inputs["audio_span_tokens"].tolist()
    assert info["input_audios"].shape == (2, 80, 300)
    prefix, step = batch.chunk(0, batch.seq_len - 1), batch.chunk(batch.seq_len - 1, batch.seq_len)
    assert "audio_info" in qwen.architecture.hf_kwargs(prefix)
    assert "audio_info" not in qwen.architecture.hf_kwargs(step)  # a cached step reads no audio


def test_qwen_audio_span_overwritten_by_the_encoder(qwen):
    """The model's own layer-0 states at the span are the encoder's vectors, at other tokens
    the token embeddings."""
    task = al.sakura_task("gender")
    batch = qwen.prepare(family_clips()[:1], 16000, task.prompt("P3"), labels=LABELS[:1])
    hidden = fc.hf_forward(qwen, batch.inputs, output_hidden_states=True).hidden_states[0][0]
    info = qwen.architecture.hf_kwargs(batch.inputs)["audio_info"]
    with torch.no_grad():
        encoded = qwen.hf_model.transformer.audio.encode(
            info["input_audios"], info["input_audio_lengths"], info["audio_span_tokens"])[0]
        embedded = qwen.hf_model.transformer.wte(batch.inputs["input_ids"][0])
    audio = batch.spans["audio"][0]
    torch.testing.assert_close(hidden[audio], encoded)
    torch.testing.assert_close(hidden[~audio], embedded[~audio])


def test_qwen_legacy_cache_ops(qwen):
    task = al.sakura_task("gender")
    batch = qwen.prepare(family_clips()[:2], 16000, task.prompt("P3"), labels=LABELS[:2])
    cache = fc.hf_forward(qwen, batch.inputs, use_cache=True).past_key_values
    assert isinstance(cache, tuple) and qwen.architecture.kv_cache.length(cache) == batch.seq_len
    cropped = qwen.crop_cache(cache, 5)
    assert qwen.architecture.kv_cache.length(cropped) == 5
    assert torch.equal(cropped[1][0], cache[1][0][:, :5])


# ------------------------------------------------------------------ DeSTA2
def test_desta_prompt_has_an_audio_turn(desta):
    task = al.sakura_task("gender")
    p3 = render_prompt(desta.processor, task.prompt("P3"))
    assert p3.startswith("<|begin_of_text|><|start_header_id|>audio<|end_header_id|>\n\n" + AUDIO_MARK)
    assert "<|start_header_id|>user<|end_header_id|>" in p3
    p1 = render_prompt(desta.processor, task.prompt("P1"))
    assert "<|start_header_id|>user" not in p1 and p1.endswith(task.prompt("P1").prefix)


def test_desta_embeddings_hold_vectors_then_transcript(desta):
    task = al.sakura_task("gender")
    clips = family_clips()
    batch = desta.prepare(clips, 16000, task.prompt("P3"), labels=LABELS)
    embed = desta.hf_model.llama.get_input_embeddings()
    for row, clip in enumerate(clips):
        transcripts, vectors = perceive(desta, [clip])  # one clip, as the original runs
        audio, said = batch.spans["audio"][row], batch.spans["transcript"][row]
        assert int(audio.sum()) == desta.hf_model.config.prompt_size == 64
        assert int(said.nonzero()[0]) == int(audio.nonzero()[-1]) + 1
        torch.testing.assert_close(batch.inputs["inputs_embeds"][row][audio], vectors[0], atol=1e-5, rtol=1e-5)
        ids = desta.tokenizer(transcripts[0], add_special_tokens=False)["input_ids"]
        assert int(said.sum()) == len(ids) > 0
        with torch.no_grad():
            assert torch.equal(batch.inputs["inputs_embeds"][row][said], embed(torch.tensor(ids)))
    assert len(set(batch.spans["transcript"].sum(1).tolist())) > 1, "transcripts of different lengths"


def test_desta_mask_covers_audio_and_transcript(desta):
    """The study's RQ4 mask for DeSTA2 hides both spans (paper footnote 4), and equals the
    key/value-cache reference with both removed from the last token's attention mask."""
    mask = default_interventions(desta)["audio_mask"][0]
    assert mask.keys == ("audio", "transcript")
    assert default_interventions()["audio_mask"][0].keys == "audio"
    task = al.sakura_task("gender")
    batch = desta.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    both = batch.span(["audio", "transcript"])
    assert torch.equal(both, batch.spans["audio"] | batch.spans["transcript"])
    masked = al.LogitLens(task).run(desta, batch, [mask])
    prefix, step = batch.chunk(0, batch.seq_len - 1), batch.chunk(batch.seq_len - 1, batch.seq_len)
    cache = fc.hf_forward(desta, prefix, use_cache=True).past_key_values
    keep = batch.inputs["attention_mask"].clone()
    keep[both] = 0
    out = fc.hf_forward(desta, {**step, "attention_mask": keep}, past_key_values=cache)
    ref = out.logits[:, -1, list(masked.label_token_ids)]
    torch.testing.assert_close(masked.logits_at("last")[desta.n_layers], ref, atol=fc.ATOL, rtol=1e-4)
    audio_only = al.LogitLens(task).run(desta, batch, [al.AudioMask()])
    assert not torch.allclose(audio_only.logits_at("last")[-1], masked.logits_at("last")[-1])
