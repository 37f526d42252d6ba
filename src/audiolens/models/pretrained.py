"""Trained checkpoints shipped inside the package (no download needed).

``demo()`` is a tiny Qwen2-Audio-architecture model trained on espeak-ng speech to answer the
SAKURA gender and language questions; see ``models/demo/README.md`` for how it was trained and
how well it does on held-out sentences and voices. It is a teaching model, not a real LALM.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..hooked import HookedAudioLM


def demo_path() -> Path:
    """Directory of the packaged demo checkpoint."""
    path = Path(str(resources.files("audiolens.models").joinpath("demo")))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"the demo checkpoint is missing from {path}; reinstall audiolens or rebuild it with "
            "`python scripts/train_demo.py`"
        )
    return path


def demo(device: str | torch.device = "cpu") -> HookedAudioLM:
    """The packaged demo model in float32, loaded offline.

    Example:
        >>> import audiolens as al
        >>> model = al.models.pretrained.demo()
        >>> model.n_layers
        8
    """
    from ..hooked import HookedAudioLM

    return HookedAudioLM.from_pretrained(str(demo_path()), torch_dtype=torch.float32, device=device)


def demo_tuned_lens(model: HookedAudioLM | None = None, **lens_kwargs):
    """The tuned lens trained for the demo model (``scripts/train_tuned_lens.py``).

    Example:
        >>> import audiolens as al
        >>> lens = al.models.demo_tuned_lens()
        >>> lens.translators.weight.shape[0]
        8
    """
    from ..lenses.tuned import TunedLens

    model = model if model is not None else demo()
    return TunedLens.load(demo_path() / "tuned_lens", model, **lens_kwargs)
