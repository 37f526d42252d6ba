"""Direct logit attribution at the answer token, through the final norm with its scale frozen.

The residual at the last layer is the sum of the embedding output and every block's attention
and MLP outputs (``hook_attn_out``, ``hook_mlp_out``). Holding the final norm's scale fixed at
its value on that sum (as TransformerLens does), the norm is linear, so the label-logit gap
``logit(target) − logit(rival)`` splits exactly into one part per component (and, on request,
per attention head). The parts sum to the model's own gap, before any soft-capping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..architectures import ArchitectureError
from ..tasks import Task
from .common import gap, label_ids, rival_labels, targets_of

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import AudioBatch
    from ..hooked import HookedAudioLM


@dataclass
class DLAResult:
    """``parts[r, c]``: component ``components[c]``'s share of row r's label-logit gap.

    Components are ``"embed"``, ``"L{ℓ}.attn"`` and ``"L{ℓ}.mlp"`` for blocks ℓ = 1..L (with
    ``per_head``: ``"L{ℓ}.H{h}"`` and ``"L{ℓ}.attn_bias"`` instead of ``"L{ℓ}.attn"``), plus
    ``"norm_bias"`` for a final LayerNorm's bias. ``gap`` is the model's own gap per row.
    """

    components: list[str]
    parts: Float[Tensor, "batch components"]
    gap: Float[Tensor, " batch"]
    targets: Tensor
    rivals: Tensor
    ids: list[str]

    def to_frame(self) -> pd.DataFrame:
        """One row per (sample, component): id, component, layer, kind, value."""
        import pandas as pd

        rows = []
        for r, i in enumerate(self.ids):
            for c, name in enumerate(self.components):
                layer, _, kind = name.partition(".")
                rows.append({"id": i, "component": name,
                             "layer": int(layer[1:]) if layer.startswith("L") else 0,
                             "kind": kind or name, "value": float(self.parts[r, c])})
        return pd.DataFrame(rows)

    def by_layer(self) -> dict[str, np.ndarray]:
        """Mean over rows of the attention and MLP parts per block (index ℓ − 1), and the embedding."""
        mean = self.parts.mean(0)
        n = max(int(c[1:].split(".")[0]) for c in self.components if c.startswith("L"))
        attn, mlp = np.zeros(n), np.zeros(n)
        for c, name in enumerate(self.components):
            if not name.startswith("L"):
                continue
            layer, kind = name[1:].split(".")
            (mlp if kind == "mlp" else attn)[int(layer) - 1] += float(mean[c])
        return {"embed": np.array([float(mean[self.components.index("embed")])]), "attn": attn, "mlp": mlp}

    def plot(self, ax: Any = None) -> Any:
        """Attention and MLP parts of the gap per block (a matplotlib Figure)."""
        from .plots import plot_dla

        return plot_dla(self, ax=ax)


def _frozen_norm(norm: Any, x: Float[Tensor, "batch d"]) -> tuple[Tensor, Tensor, Tensor, bool]:  # an HF norm module
    """``(gain, scale, bias, centre)`` with ``norm(x) = gain ⊙ (x − centre·mean(x)) / scale + bias``,
    checked against the module itself."""
    eps = float(getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", None) or 0.0)
    is_layer_norm = isinstance(norm, torch.nn.LayerNorm) or getattr(norm, "bias", None) is not None
    d = x.shape[-1]
    ones = torch.ones(1, d, dtype=x.dtype, device=x.device)
    bias = norm.bias.detach() if is_layer_norm and norm.bias is not None else torch.zeros(d, dtype=x.dtype, device=x.device)
    if is_layer_norm:  # gain from a centred unit vector: alternating ±1 has mean 0, variance 1
        probe = torch.ones(1, d, dtype=x.dtype, device=x.device)
        probe[:, 1::2] = -1
        if d % 2:
            probe[:, -1] = 0
        var = probe.pow(2).mean()
        gain = ((norm(probe) - bias) * torch.sqrt(var + eps) / probe).nan_to_num()[0]
        centred = x - x.mean(-1, keepdim=True)
        scale = torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    else:
        gain = norm(ones)[0] * torch.sqrt(torch.tensor(1.0 + eps, dtype=x.dtype))
        scale = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    rebuilt = gain * ((x - x.mean(-1, keepdim=True)) if is_layer_norm else x) / scale + bias
    if not torch.allclose(rebuilt, norm(x), atol=1e-4, rtol=1e-3):
        raise ArchitectureError(
            f"the final norm ({type(norm).__name__}) is neither an RMS norm nor a LayerNorm with a "
            "per-dimension gain, so its scale cannot be frozen for attribution"
        )
    return gain, scale, bias, is_layer_norm


@torch.no_grad()
def direct_logit_attribution(
    model: HookedAudioLM, batch: AudioBatch, labels: Task | Sequence[str], position: str = "last",
    per_head: bool = False,
) -> DLAResult:
    """Split the label-logit gap at ``position`` into embedding, attention and MLP parts.

    The rival is each row's best-scoring label other than its target under the model itself.

    Example:
        >>> dla = al.direct_logit_attribution(model, batch, task)  # doctest: +SKIP
        >>> dla.parts.sum(1), dla.gap  # equal  # doctest: +SKIP
    """
    targets = targets_of(batch)
    ids = label_ids(model, labels, batch=batch)
    L = model.n_layers
    names = [model.resid_name(0), model.resid_name(L)]
    for b in range(L):
        names += [f"blocks.{b}.hook_attn_out", f"blocks.{b}.hook_mlp_out"]
        if per_head:
            names.append(f"blocks.{b}.attn.hook_z")
    _, cache = model.run_with_cache(batch, names_filter=names, positions=position, return_type=None)
    final = cache[model.resid_name(L)][:, 0]
    gain, scale, bias, centre = _frozen_norm(model.final_norm, final)

    label_rows = model.W_U[ids].to(final.dtype)  # (labels, d)
    head = cast(Any, model.hf_model).get_output_embeddings()  # an HF method, not nn.Module's
    head_bias = head.bias[ids].to(final.dtype) if getattr(head, "bias", None) is not None else None
    logits = model.final_norm(final) @ label_rows.T  # before any soft-capping
    if head_bias is not None:
        logits = logits + head_bias
    rivals = rival_labels(logits.float().cpu(), targets)
    direction = label_rows[targets.to(final.device)] - label_rows[rivals.to(final.device)]  # (batch, d)

    def part(x: Tensor) -> Tensor:  # x: (batch, d) → (batch,)
        if centre:
            x = x - x.mean(-1, keepdim=True)
        return ((gain * x / scale) * direction).sum(-1)

    components, parts = ["embed"], [part(cache[model.resid_name(0)][:, 0])]
    m = model.cfg.residual_multiplier
    for b in range(L):
        if per_head:
            attn = model.layers[b].get_submodule(model.architecture.attention)
            proj = cast(torch.nn.Linear, attn.get_submodule(model.architecture.attn_output_proj))
            z = cache[f"blocks.{b}.attn.hook_z"][:, 0]  # (batch, head, d_head)
            w = proj.weight.reshape(proj.weight.shape[0], z.shape[1], z.shape[2])
            heads = m * torch.einsum("bhd,mhd->bhm", z, w)
            for h in range(z.shape[1]):
                components.append(f"L{b + 1}.H{h}")
                parts.append(part(heads[:, h]))
            components.append(f"L{b + 1}.attn_bias")
            attn_bias = cache[f"blocks.{b}.hook_attn_out"][:, 0] - heads.sum(1)
            parts.append(part(attn_bias))
        else:
            components.append(f"L{b + 1}.attn")
            parts.append(part(cache[f"blocks.{b}.hook_attn_out"][:, 0]))
        components.append(f"L{b + 1}.mlp")
        parts.append(part(cache[f"blocks.{b}.hook_mlp_out"][:, 0]))
    if centre:
        components.append("norm_bias")
        parts.append((bias * direction).sum(-1))
    if head_bias is not None:
        components.append("head_bias")
        parts.append(head_bias[targets] - head_bias[rivals])
    model_gap = gap(logits.float().cpu(), targets, rivals)
    return DLAResult(components=components, parts=torch.stack(parts, 1).float().cpu(), gap=model_gap,
                     targets=targets.cpu(), rivals=rivals, ids=list(batch.ids))
