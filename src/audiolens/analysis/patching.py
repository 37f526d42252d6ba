"""Activation patching: copy activations of a clean run into a corrupted one, one (layer,
position group) at a time, and see how much of the clean answer comes back.

Recovery is normalised: ``(gap_patched − gap_corrupt) / (gap_clean − gap_corrupt)``, with
``gap`` the mean over rows of logit(target) − logit(rival) at the last token (the rival is each
row's best other label in the clean run): 1 = the clean answer, 0 = the corrupted one. Position
groups are audio windows in seconds (from the family's audio tokens per second) and the batch's
text spans; the patched runs are batched, several variants per forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..batch import AudioBatch
from ..checks import finite_number, layer_numbers, whole_number
from ..errors import ParameterError
from ..errors import PatchError as PatchError
from ..tasks import Task
from .common import gap, label_ids, rival_labels, targets_of

if TYPE_CHECKING:
    import pandas as pd

    from ..hooked import HookedAudioLM

WHAT = {"resid": "resid", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}


@dataclass
class PatchResult:
    """``recovery[ℓ, g]`` for layer ℓ (``layers``) and position group g (``groups``)."""

    what: str
    layers: list[int]
    groups: list[str]
    recovery: Float[Tensor, "layers groups"]
    clean_gap: float
    corrupt_gap: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: what, layer, group, recovery."""
        import pandas as pd

        return pd.DataFrame([
            {"what": self.what, "layer": layer, "group": g, "recovery": float(self.recovery[i, j])}
            for i, layer in enumerate(self.layers) for j, g in enumerate(self.groups)
        ])

    def plot(self, ax: Any = None) -> Any:
        """Heatmap of recovery per (layer, group)."""
        from .plots import plot_patch

        return plot_patch(self, ax=ax)


CORRUPTIONS = ("noise", "silence", "reversed", "swap")


def corrupt_clips(clips: Sequence[np.ndarray], kind: str = "noise", *, snr_db: float = 0.0,
                  seed: int = 0, labels: Sequence[str] | None = None) -> list[np.ndarray]:
    """Counterfactual partners of the same length (so their tokens line up):

    - ``"noise"``: the clip plus white noise at ``snr_db`` (dB of clip power over noise power);
    - ``"silence"``: zeros;
    - ``"reversed"`` (also ``"shuffle"``): the clip backwards in time;
    - ``"swap"``: a clip of another label (``labels``, one per clip, needed), drawn with
      ``seed``, cut or zero-padded to this clip's length.

    "No audio at all" is not a waveform: :func:`audiolens.grounding` expresses it by masking.

    Example:
        >>> out = corrupt_clips([np.ones(100, np.float32)], "silence")
        >>> float(np.abs(out[0]).max())
        0.0
        >>> swapped = corrupt_clips([np.zeros(4), np.ones(6)], "swap", labels=["a", "b"])
        >>> swapped[0].tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    from ..errors import CounterfactualError

    if kind not in CORRUPTIONS:
        raise CounterfactualError(f"unknown corruption {kind!r}: use one of {list(CORRUPTIONS)}")
    snr_db = finite_number(snr_db, "corrupt_clips: snr_db")
    rng = np.random.default_rng(seed)
    clips = [np.asarray(clip, dtype=np.float32) for clip in clips]
    if kind == "swap":
        if labels is None or len(labels) != len(clips):
            raise CounterfactualError(f"swap needs one label per clip ({len(clips)} clips); pass labels=")
        if len(set(labels)) < 2:
            raise CounterfactualError(
                f"swap needs clips of at least two labels, but every clip is {labels[0]!r}: no clip of another "
                "label to swap in; use more labels or another condition")
        out = []
        for clip, label in zip(clips, labels):
            others = [j for j, other in enumerate(labels) if other != label]
            partner = clips[int(rng.choice(others))][: len(clip)]
            out.append(np.pad(partner, (0, len(clip) - len(partner))).astype(np.float32))
        return out
    out = []
    for clip in clips:
        if kind == "noise":
            power = float(np.mean(clip ** 2)) or 1e-8
            noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), clip.shape)
            out.append((clip + noise).astype(np.float32))
        elif kind == "silence":
            out.append(np.zeros_like(clip))
        elif kind in ("reversed", "shuffle"):
            out.append(clip[::-1].copy())
        else:
            raise CounterfactualError(f"unknown corruption {kind!r}: use one of {list(CORRUPTIONS)}")
    return out


def _check_pair(clean: AudioBatch, corrupt: AudioBatch) -> None:
    if len(clean) != len(corrupt) or clean.seq_len != corrupt.seq_len:
        raise PatchError(
            f"clean ({len(clean)} × {clean.seq_len}) and corrupted ({len(corrupt)} × {corrupt.seq_len}) "
            "batches must have the same rows and length; build the corrupted clips with the same "
            "durations (see corrupt_clips) and the same prompt"
        )
    for name in ("audio", "padding"):
        if not torch.equal(clean.span(name), corrupt.span(name)):
            raise PatchError(f"the {name!r} spans of the clean and corrupted batches differ")


def position_groups(model: HookedAudioLM, batch: AudioBatch, window_seconds: float = 0.5) -> dict[str, Tensor]:
    """Audio windows of ``window_seconds`` (``"audio 0.0-0.5s"``, ...) and the text spans
    (``"question"``, ``"prefix"``) as ``(batch, seq)`` masks."""
    groups: dict[str, Tensor] = {}
    rate = model.architecture.tokens_per_second
    audio = batch.span("audio")
    if rate:
        rank = audio.long().cumsum(1) - 1
        per_window = max(1, round(window_seconds * rate))
        n = int(audio.sum(1).max())
        for start in range(0, n, per_window):
            mask = audio & (rank >= start) & (rank < start + per_window)
            groups[f"audio {start / rate:.2f}-{(start + per_window) / rate:.2f}s"] = mask
    else:
        groups["audio"] = audio
    for name in ("question", "prefix"):
        if name in batch.spans:
            groups[name] = batch.span(name)
    return groups


def _hook_name(model: HookedAudioLM, what: str, layer: int) -> str:
    if what == "resid":
        return model.resid_name(layer)
    return f"blocks.{layer - 1}.{WHAT[what]}"


@torch.no_grad()
def patched_label_logits(
    model: HookedAudioLM, clean_acts: dict[str, Tensor], corrupt: AudioBatch, patches: Sequence[Sequence[tuple[str, Tensor]]],
    label_token_ids: Sequence[int],
) -> Float[Tensor, "variants batch labels"]:
    """Label logits at the last token for each variant: a list of ``(hook_name, (batch, seq)
    mask)`` patches, all applied at once; every variant runs as a copy of the batch."""
    n, v = len(corrupt), len(patches)
    inputs = {k: t.repeat(v, *[1] * (t.ndim - 1)) for k, t in corrupt.inputs.items()}
    by_name: dict[str, Tensor] = {}
    for i, variant in enumerate(patches):
        for name, mask in variant:
            if name not in by_name:
                by_name[name] = torch.zeros(v * n, corrupt.seq_len, dtype=torch.bool)
            by_name[name][i * n:(i + 1) * n] |= mask
    hooks: list[Any] = []
    for name, mask in by_name.items():
        source = clean_acts[name].repeat(v, *[1] * (clean_acts[name].ndim - 1))

        def fn(act: Tensor, hook: Any, mask: Tensor = mask, source: Tensor = source) -> Tensor:
            m = mask.to(act.device)[..., None]
            return torch.where(m, source.to(act.device, act.dtype), act)

        hooks.append((name, fn))
    with model.hooks(fwd_hooks=hooks):
        out = model.run_backbone(inputs)
    last = out.last_hidden_state[:, -1]
    logits: Tensor = model.unembed(last, label_token_ids).float().cpu()
    return logits.reshape(v, n, -1)


@torch.no_grad()
def patch(
    model: HookedAudioLM,
    clean: AudioBatch,
    corrupt: AudioBatch,
    task: Task | Sequence[str],
    what: str = "resid",
    groups: str | Sequence[str] = "audio_seconds",
    layers: Sequence[int] | None = None,
    window_seconds: float = 0.5,
    variants_per_pass: int = 8,
) -> PatchResult:
    """Recovery of the clean label-logit gap when ``what`` is patched from ``clean`` into
    ``corrupt`` at each layer × position group.

    ``what`` is ``"resid"`` (the residual at paper layer ℓ = 0..L-1), ``"attn_out"`` or
    ``"mlp_out"`` (block ℓ = 1..L). ``groups`` is ``"audio_seconds"`` (audio windows of
    ``window_seconds`` plus the text spans) or a list of span names of the batch.

    Example:
        >>> pat = al.patch(model, clean=batch_f, corrupt=batch_m, task=task)  # doctest: +SKIP
        >>> pat.to_frame().pivot(index="layer", columns="group", values="recovery")  # doctest: +SKIP
    """
    if what not in WHAT:
        raise ParameterError(f"what must be one of {sorted(WHAT)}, got {what!r}")
    variants_per_pass = whole_number(variants_per_pass, "patch: variants_per_pass", low=1)
    window_seconds = finite_number(window_seconds, "patch: window_seconds", low=0, low_open=True)
    _check_pair(clean, corrupt)
    targets = targets_of(clean)
    ids = label_ids(model, task, batch=clean)
    low = 0 if what == "resid" else 1
    if layers is None:
        layers = list(range(low, model.n_layers + low))
    else:
        layers = layer_numbers(layers, f"patch layers ({what})", low=low, high=model.n_layers - 1 + low)
    if isinstance(groups, str) and groups == "audio_seconds":
        masks = position_groups(model, clean, window_seconds)
    else:
        masks = {g: clean.span(g) for g in ([groups] if isinstance(groups, str) else groups)}
    names = sorted({_hook_name(model, what, layer) for layer in layers})
    _, cache = model.run_with_cache(clean, names_filter=names, return_type=None)
    clean_acts = {n: cache[n] for n in names}

    corrupt_logits = patched_label_logits(model, clean_acts, corrupt, [[]], ids)[0]
    clean_logits = model.unembed(
        model.run_backbone(clean.inputs).last_hidden_state[:, -1], ids).float().cpu()
    rivals = rival_labels(clean_logits, targets)
    clean_gap = float(gap(clean_logits, targets, rivals).mean())
    corrupt_gap = float(gap(corrupt_logits, targets, rivals).mean())
    if abs(clean_gap - corrupt_gap) < 1e-6:
        raise PatchError("the clean and corrupted runs give the same label-logit gap: nothing to recover")

    cells = [(i, j) for i in range(len(layers)) for j in range(len(masks))]
    group_masks = list(masks.values())
    recovery = torch.zeros(len(layers), len(masks))
    for start in range(0, len(cells), variants_per_pass):
        chunk = cells[start:start + variants_per_pass]
        variants = [[(_hook_name(model, what, layers[i]), group_masks[j])] for i, j in chunk]
        logits = patched_label_logits(model, clean_acts, corrupt, variants, ids)
        for (i, j), lg in zip(chunk, logits):
            recovery[i, j] = (float(gap(lg, targets, rivals).mean()) - corrupt_gap) / (clean_gap - corrupt_gap)
    return PatchResult(what=what, layers=list(layers), groups=list(masks), recovery=recovery,
                       clean_gap=clean_gap, corrupt_gap=corrupt_gap)
