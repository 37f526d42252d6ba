"""Families saved with ``save_pretrained`` and loaded back: identical logits, the command-line
study on saved checkpoints, TransformerLens's bridge as an independent reference, and named
errors for models this library refuses."""

from __future__ import annotations

import copy
from pathlib import Path

import family_checks as fc
import pytest
import torch
from test_families import LABELS, family_clips
from transformers import ProcessorMixin

import audiolens as al
from audiolens.study.records import read_records

# The remote-code families' doubles load from checkpoint folders: test_remote_code.py runs them.
FAMILIES = [f for f in al.models.families() if not al.ARCHITECTURES[f].remote_code]


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


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """family -> (in-memory tiny model with randomised norm gains, its save_pretrained folder).

    The processor is saved too where it is an HF processor (not an offline stand-in)."""
    made: dict[str, tuple[al.HookedAudioLM, Path]] = {}

    def get(family: str) -> tuple[al.HookedAudioLM, Path]:
        if family not in made:
            model = al.models.tiny(family, seed=0)
            fc.randomize_norm_gains(model.hf_model)
            folder = tmp_path_factory.mktemp(family)
            model.hf_model.save_pretrained(folder)
            if saves_processor(model):
                model.processor.save_pretrained(folder)
            made[family] = model, folder
        return made[family]

    return get


def saves_processor(model: al.HookedAudioLM) -> bool:
    return isinstance(model.processor, ProcessorMixin)


# Their tiny builds use offline stand-in processors (HF's need torchaudio, torchvision or a
# mistral-common tokenizer file), which HF cannot save or reload.
STAND_IN_PROCESSORS = {"granite_speech", "phi4_multimodal", "qwen2_5_omni_thinker", "qwen3_omni_moe_thinker",
                       "voxtral"}


def test_stand_in_processors_are_the_only_unsaved_ones(saved):
    assert {f for f in FAMILIES if not saves_processor(saved(f)[0])} == STAND_IN_PROCESSORS


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - STAND_IN_PROCESSORS))
def test_from_pretrained_round_trip(family, saved, task):
    model, folder = saved(family)
    loaded = al.HookedAudioLM.from_pretrained(str(folder))
    assert type(loaded.hf_model) is type(model.hf_model) and type(loaded.processor) is type(model.processor)
    assert loaded.architecture.name == family
    assert loaded.audio_token_id == model.audio_token_id
    # The saved processor renders, tokenizes and extracts features exactly as the in-memory one.
    prompt = task.prompt("P3")
    batch = model.prepare(family_clips(), 16000, prompt, labels=LABELS)
    again = loaded.prepare(family_clips(), 16000, prompt, labels=LABELS)
    assert batch.inputs.keys() == again.inputs.keys()
    for key, value in batch.inputs.items():
        assert torch.equal(again.inputs[key], value), key
    with torch.no_grad():
        assert torch.equal(loaded(batch), model(batch))


def bridged_families() -> list[str]:
    """The families whose HF class TransformerLens has an adapter for."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    return [f for f in FAMILIES if al.ARCHITECTURES[f].hf_class in SUPPORTED_ARCHITECTURES]


@pytest.mark.parametrize("family", bridged_families())
def test_residuals_equal_transformer_bridge(family, saved):
    """Wherever TransformerLens has an adapter for the family's HF class."""
    from transformer_lens.model_bridge import TransformerBridge

    model, folder = saved(family)
    # The bridge edits the model and tokenizer it wraps: give it copies.
    bridge = TransformerBridge.boot_transformers(
        str(folder), hf_model=copy.deepcopy(model.hf_model), tokenizer=copy.deepcopy(model.tokenizer)
    )
    batch = model.prepare(family_clips(), 16000, al.sakura_task("gender").prompt("P3"), labels=LABELS)
    inputs = dict(batch.inputs)
    with torch.no_grad():
        _, theirs = bridge.run_with_cache(inputs.pop("input_ids"), **inputs)
    _, ours = model.run_with_cache(batch, names_filter=lambda n: n.endswith("resid_post"))
    real = batch.inputs["attention_mask"].bool()  # padding positions carry no meaning
    for layer in range(model.n_layers):
        name = f"blocks.{layer}.hook_resid_post"
        torch.testing.assert_close(ours[name][real], theirs[name][real], rtol=1e-4, atol=1e-5)


REPRODUCE_FAMILIES = ["qwen2_audio", "audioflamingo3", "qwen3_asr"]


@pytest.mark.filterwarnings("ignore:.*enrichment skipped")  # too few clips to pick a layer
def test_reproduce_command_on_saved_checkpoints(saved, tmp_path):
    """``audiolens reproduce --model <folder>`` on three families' saved checkpoints: each run
    writes records whose top-layer logits are the in-memory model's own next-token logits."""
    from audiolens.cli import main
    from audiolens.data import load_sakura

    data = Path(__file__).parent / "fixtures" / "sakura"
    track = load_sakura(data, "gender")  # four short clips
    for family in REPRODUCE_FAMILIES:
        model, folder = saved(family)
        out = tmp_path / family
        argv = ["reproduce", "--model", str(folder), "--data", str(data), "--out", str(out),
                "--attributes", "gender"]
        assert main(argv) == 0
        name = folder.name  # the study names a checkpoint after its folder
        assert (out / "tables" / "table2.md").read_text().count(f"| {name} |") == 1
        assert {p.name for p in (out / "figures").iterdir()} == {f"fig{n}.png" for n in (2, 3, 4, 5)}
        rows = {r["id"]: r for r in read_records(out / "records" / name / "gender" / "P3.none.jsonl")}
        assert sorted(rows) == sorted(s.id for s in track.samples)
        prompt = track.task.prompt("P3")
        ids = al.LogitLens(track.task).run(
            model, model.prepare([track.samples[0].load(16000)], 16000, prompt)
        ).label_token_ids
        for s in track.samples:
            batch = model.prepare([s.load(model.sampling_rate)], model.sampling_rate, prompt)
            want = fc.hf_forward(model, batch.inputs).logits[0, -1, list(ids)]
            got = torch.tensor(rows[s.id]["logits"]["last"][model.n_layers])
            torch.testing.assert_close(got, want.float(), atol=1e-4, rtol=1e-4)


def save_config(config, folder: Path) -> str:
    config.save_pretrained(folder)
    return str(folder)


def test_refused_models_get_a_named_error(tmp_path):
    from transformers import KyutaiSpeechToTextConfig, VoxtralRealtimeConfig, WhisperConfig

    whisper = save_config(WhisperConfig(), tmp_path / "whisper")
    with pytest.raises(al.UnsupportedModelError, match="'whisper' is an encoder-decoder model"):
        al.HookedAudioLM.from_pretrained(whisper)
    kyutai = save_config(KyutaiSpeechToTextConfig(), tmp_path / "kyutai")
    with pytest.raises(al.UnsupportedModelError, match="'kyutai_speech_to_text' is not supported: .*codec"):
        al.HookedAudioLM.from_pretrained(kyutai)
    realtime = save_config(VoxtralRealtimeConfig(), tmp_path / "realtime")
    with pytest.raises(al.UnsupportedModelError, match="streaming"):
        al.HookedAudioLM.from_pretrained(realtime)


def test_unregistered_model_type_says_how_to_describe_it(tmp_path):
    from transformers import LlamaConfig

    llama = save_config(LlamaConfig(), tmp_path / "llama")
    with pytest.raises(al.ArchitectureError, match="no architecture registered for model_type 'llama'") as err:
        al.HookedAudioLM.from_pretrained(llama)
    assert not isinstance(err.value, al.UnsupportedModelError)
    assert "architecture=" in str(err.value)
