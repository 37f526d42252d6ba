"""Every family :func:`audiolens.models.tiny` builds passes the checks in ``family_checks``."""

import family_checks as fc
import numpy as np
import pytest

import audiolens as al

# The remote-code families' doubles load from checkpoint folders: test_remote_code.py runs them.
FAMILIES = [f for f in al.models.families() if not al.ARCHITECTURES[f].remote_code]
LABELS = ["male", "female", "female"]


def family_clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for seconds, freq in [(1.0, 120), (2.2, 220), (0.6, 300)]:
        t = np.arange(int(seconds * 16000)) / 16000
        out.append((0.3 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.05, t.size)).astype(np.float32))
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def case(request):
    model = al.models.tiny(request.param, seed=0)
    fc.randomize_norm_gains(model.hf_model)
    task = al.sakura_task("gender")
    batch = model.prepare(family_clips(), 16000, task.prompt("P3"), labels=LABELS)
    return model, batch, task


@pytest.mark.parametrize("check", fc.CHECKS, ids=lambda f: f.__name__)
def test_family(case, check):
    check(*case)


@pytest.mark.parametrize("check", fc.ENCODER_CHECKS, ids=lambda f: f.__name__)
def test_family_encoder(case, check):
    check(*case)


def test_family_resid_mid(case):
    model, batch, task = case
    if model.architecture.resid_mid_unavailable:
        with pytest.raises(al.HookUnavailable, match=model.architecture.name):
            model.run_with_cache(batch, names_filter=["blocks.0.hook_resid_mid"])
    else:
        fc.resid_mid_is_exact(model, batch, task)


def test_family_padded_rows_equal_rows_alone(case):
    model, _, task = case
    fc.padded_rows_equal_rows_alone(model, family_clips(), task, LABELS)


def test_family_run_formats_equals_run_many(case):
    model, _, task = case
    fc.run_formats_equals_run_many(model, family_clips(), task, LABELS)


def test_family_nnsight_equals_hooks(case):
    fc.nnsight_equals_hooks(*case)


def test_tiny_accepts_every_name_in_the_readme_table(monkeypatch):
    """Each ``model_type`` of the README's family table, and each family's name, builds."""
    import importlib
    import re
    from pathlib import Path

    from audiolens.architectures.names import FAMILY_TITLES

    tiny_module = importlib.import_module("audiolens.models.tiny")

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| family | `model_type` |"):]
    table = table[:table.index("\n\n")]
    names = [n for row in table.splitlines()[2:] for n in re.findall(r"`([^`]+)`", row.split("|")[2])]
    assert {"qwen2_5_omni", "qwen3_omni_moe", "qwen", "DestaModel"} <= set(names)
    built = []
    monkeypatch.setattr(tiny_module, "BUILDERS",
                        {key: (lambda seed, key=key: built.append(key)) for key in tiny_module.BUILDERS})
    for name in names + sorted(set(FAMILY_TITLES.values())):
        built.clear()
        al.models.tiny(name)
        assert built and al.ARCHITECTURES[built[0]].remote_code == (name in ("qwen", "DestaModel", "Qwen-Audio-Chat", "DeSTA2")), name
    al.models.tiny("Qwen2.5-Omni")
    assert built[-1] == "qwen2_5_omni_thinker"  # a composite builds the part audiolens reads
    with pytest.raises(ValueError, match="no tiny build for family 'gemma3n'.*Qwen2.5-Omni"):
        al.models.tiny("gemma3n")


def test_repr_names_the_model_not_its_hook_tree():
    model = al.models.tiny("qwen3_asr", seed=0, n_layers=3)
    text = repr(model)
    assert "\n" not in text and "hook_resid_post" not in text
    assert text.startswith("HookedAudioLM(family='Qwen3-ASR (qwen3_asr)', checkpoint=None, n_layers=3, ")
    assert f"d_model={model.hf_model.config.get_text_config().hidden_size}," in text
    assert text.endswith("dtype='float32', device='cpu')")
    assert str(model) == text
