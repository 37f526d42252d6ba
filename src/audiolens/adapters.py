"""Architectures as data: where an audio-LLM keeps its decoder layers, final norm and head.

Adding a model is adding an :class:`Architecture` to :data:`ARCHITECTURES` (keyed by the HF
config's ``model_type``) or passing one to ``HookedAudioLM.from_hf(..., architecture=...)``.
Every path is checked when the model is wrapped, and a wrong one fails with an error naming the
path, the model class and the modules that do exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class ArchitectureError(ValueError):
    """The wrapped model does not match its architecture description."""


@dataclass(frozen=True)
class Architecture:
    """Module paths (dotted, from the HF model's root) and tokens of one audio-LLM family.

    ``backbone`` runs the audio encoder and the decoder and returns ``last_hidden_state``
    (final-normed) without applying the head: the lens calls it so that full-vocabulary logits
    are never computed at every position.

    Example:
        >>> arch = ARCHITECTURES["qwen2_audio"]
        >>> arch.layers
        'model.language_model.layers'
    """

    name: str
    hf_class: str
    layers: str
    final_norm: str
    unembed: str
    backbone: str
    attention: str = "self_attn"  # relative to one decoder layer
    audio_token: str = "<|AUDIO|>"

    def resolve(self, hf_model: nn.Module) -> dict[str, nn.Module]:
        """Look up every path on ``hf_model``; raise :class:`ArchitectureError` naming a bad one."""
        found = {}
        for field in ("layers", "final_norm", "unembed", "backbone"):
            found[field] = self._get(hf_model, getattr(self, field), field)
        layers = found["layers"]
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise ArchitectureError(
                f"{self.name}: {self.layers!r} on {type(hf_model).__name__} is "
                f"{type(layers).__name__}, expected a non-empty ModuleList of decoder layers"
            )
        self._get(layers[0], self.attention, "attention", prefix=f"{self.layers}.0.")
        weight = getattr(found["unembed"], "weight", None)
        if weight is None or weight.ndim != 2:
            raise ArchitectureError(f"{self.name}: {self.unembed!r} has no 2-D weight to unembed with")
        return found

    def _get(self, root: nn.Module, path: str, field: str, prefix: str = "") -> nn.Module:
        try:
            return root.get_submodule(path)
        except AttributeError:
            children = [name for name, _ in root.named_children()]
            raise ArchitectureError(
                f"{self.name}: no module {prefix + path!r} ({field}) in {type(root).__name__}; "
                f"its top-level modules are {children}. Describe the model with "
                f"audiolens.Architecture(..., {field}='<dotted path>') and pass it as "
                "HookedAudioLM.from_hf(model, processor, architecture=...)"
            ) from None


QWEN2_AUDIO = Architecture(
    name="qwen2_audio",
    hf_class="Qwen2AudioForConditionalGeneration",
    layers="model.language_model.layers",
    final_norm="model.language_model.norm",
    unembed="lm_head",
    backbone="model",
)

ARCHITECTURES: dict[str, Architecture] = {QWEN2_AUDIO.name: QWEN2_AUDIO}


def architecture_for(model_type: str) -> Architecture:
    """The registered architecture for an HF ``config.model_type``, or a clear error."""
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        raise ArchitectureError(
            f"no architecture registered for model_type {model_type!r} (known: "
            f"{sorted(ARCHITECTURES)}). Describe it with audiolens.Architecture(name=..., "
            "hf_class=..., layers=..., final_norm=..., unembed=..., backbone=...) and pass "
            "architecture=... when wrapping; see docs/adapters.md"
        ) from None
