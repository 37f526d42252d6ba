"""Shared fixtures: a tiny random Qwen2-Audio and seeded clips of different lengths."""

import os

# Tests never reach a model hub; fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import pytest
import torch

import audiolens as al

torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _no_package_installs():
    """TransformerLens's bridge pip-installs torchvision when a multimodal processor fails to
    load; that would pull a different torch into the environment in the middle of the suite."""
    try:
        from transformer_lens.model_bridge.sources.transformers import helpers
    except ImportError:
        yield
        return
    original = getattr(helpers, "_ensure_torchvision", None)
    if original is None:
        yield
        return
    helpers._ensure_torchvision = lambda: False
    yield
    helpers._ensure_torchvision = original


@pytest.fixture(scope="session")
def tiny_model() -> al.HookedAudioLM:
    return al.models.tiny_qwen2_audio(seed=0)


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    """Four seeded noise-plus-tone clips of different lengths (so batches are left-padded)."""
    rng = np.random.default_rng(0)
    out = []
    for seconds, freq in [(1.0, 120), (2.5, 220), (1.6, 180), (0.7, 300)]:
        t = np.arange(int(seconds * 16000)) / 16000
        out.append((0.3 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.05, t.size)).astype(np.float32))
    return out


@pytest.fixture(scope="session")
def gender_task() -> al.Task:
    return al.sakura_task("gender")


@pytest.fixture(scope="session")
def gender_batch(tiny_model, clips, gender_task) -> al.AudioBatch:
    return tiny_model.prepare(
        clips, 16000, gender_task.prompt("P3"), labels=["male", "female", "female", "male"]
    )

# The tiny models' matrices are too small to share out: one thread is several times faster.
torch.set_num_threads(1)


def _illustration_only(item: pytest.Item) -> bool:
    """A docstring whose every example is marked ``+SKIP`` (a call on a hub checkpoint, a GPU, a
    data set on disk) shows usage and tests nothing."""
    import doctest

    from _pytest.doctest import DoctestItem

    examples = item.dtest.examples if isinstance(item, DoctestItem) and item.dtest else []
    return bool(examples) and all(ex.options.get(doctest.SKIP) for ex in examples)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest would count each such docstring as a skipped test; they are deselected and counted
    # apart, so that the skip summary lists only tests this machine cannot run.
    shown = [item for item in items if _illustration_only(item)]
    if shown:
        items[:] = [item for item in items if not _illustration_only(item)]
        config.hook.pytest_deselected(items=shown)
        config.stash[_ILLUSTRATIONS] = len(shown)


_ILLUSTRATIONS = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    n = config.stash.get(_ILLUSTRATIONS, 0)
    if n:
        terminalreporter.write_line(
            f"{n} docstring examples only illustrate (every line +SKIP: hub checkpoints, data on disk) "
            "and are deselected, not run")
