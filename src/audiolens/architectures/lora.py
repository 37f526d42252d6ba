"""Loading checkpoints whose audio path was trained together with a LoRA adapter on the decoder.

Granite Speech and Phi-4-multimodal ship their decoder weights plus a speech LoRA adapter
(``peft`` format); without it the decoder is the base text model and reads audio wrongly.
transformers loads such adapters only when ``peft`` is installed, and silently skips them
otherwise, so these loaders check that the adapter is live and say what to do when it is not.
``peft`` stays optional (``pip install 'audiolens[lora]'``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .base import ArchitectureError

#: ``from_pretrained`` options that locate files: they apply to config, processor and adapters.
HUB_OPTIONS = ("revision", "token", "cache_dir", "trust_remote_code", "local_files_only")


def hub_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options in ``kwargs`` that locate files (see :data:`HUB_OPTIONS`).

    Example:
        >>> hub_options({"revision": "main", "dtype": "bfloat16"})
        {'revision': 'main'}
    """
    return {k: v for k, v in kwargs.items() if k in HUB_OPTIONS}


def adapter_loaded(model: nn.Module) -> bool:
    """Whether transformers attached a peft adapter to ``model``."""
    return bool(getattr(model, "_hf_peft_config_loaded", False))


def missing_adapter(name: str, where: str, opt_out: str) -> ArchitectureError:
    """The error for a checkpoint whose speech adapter could not be attached."""
    try:
        import peft  # noqa: F401

        why = f"the adapter was not found at {where}"
    except ImportError:
        why = "transformers attaches it only when peft is installed (pip install 'audiolens[lora]')"
    return ArchitectureError(
        f"{name} checkpoints carry a speech LoRA adapter that their audio input was trained with, "
        f"and it is not attached: {why}. To read the base decoder without it, pass {opt_out}"
    )
