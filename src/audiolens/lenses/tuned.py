"""The tuned lens (Belrose et al., 2023) for any wrapped audio-LLM.

Each layer ℓ < L gets an affine translator ``h ↦ h + A_ℓ h + b_ℓ`` applied before the model's
final norm and head, trained so that the layer's decoded distribution matches the model's own
final one (KL divergence) on clips and prompts. With ``A = 0, b = 0`` it is the logit lens
exactly. A :class:`TunedLens` is a :class:`~audiolens.lenses.logit.LogitLens`, so it runs, scores and
plots wherever the logit lens does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from ..batch import AudioBatch
from ..checks import finite_number, whole_number
from ..errors import ParameterError, TunedLensFileError
from ..tasks import Prompt, Task
from .logit import LogitLens

if TYPE_CHECKING:
    from ..hooked import HookedAudioLM

FORMAT_VERSION = 1


class Translators(nn.Module):
    """One affine map per layer 0..L-1, initialised to the identity (zero residual map)."""

    def __init__(self, n_layers: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_layers, d_model, d_model))
        self.bias = nn.Parameter(torch.zeros(n_layers, d_model))

    def forward(self, hidden: Tensor, layer: int) -> Tensor:
        if layer >= self.weight.shape[0]:  # the last layer is read as it is
            return hidden
        w, b = self.weight[layer], self.bias[layer]
        return hidden + (hidden.to(w.dtype) @ w.T + b).to(hidden.dtype)


@dataclass
class TunedLens(LogitLens):
    """The logit lens with a trained affine translator per layer.

    Example:
        >>> tuned = al.TunedLens.train(model, clips, steps=300)  # doctest: +SKIP
        >>> tuned.save("lens/")  # doctest: +SKIP
        >>> al.TunedLens.load("lens/", model).run(model, batch).info_scores()  # doctest: +SKIP
    """

    labels: Task | Sequence[str] | None = None
    translators: Translators | None = field(default=None, repr=False)
    history: dict[str, Any] = field(default_factory=dict, repr=False)

    def transform_hidden(self, model: HookedAudioLM, hidden: Tensor, layer: int) -> Tensor:
        return cast(Tensor, model.final_norm(self._fitted()(hidden, layer)))

    def _fitted(self) -> Translators:
        if self.translators is None:
            raise ValueError("this tuned lens has no translators: use TunedLens.train or TunedLens.load")
        return self.translators

    @classmethod
    def identity(cls, model: HookedAudioLM, **lens_kwargs: Any) -> TunedLens:
        """Untrained translators: equal to the logit lens."""
        tr = Translators(model.n_layers, model.cfg.d_model).to(model.device)
        return cls(translators=tr, **lens_kwargs)

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        model: HookedAudioLM,
        clips: Sequence[np.ndarray],
        *,
        prompts: Sequence[Prompt] | None = None,
        sampling_rate: int = 16000,
        steps: int = 300,
        lr: float = 1e-3,
        weight_decay: float = 1e-3,
        batch_positions: int = 512,
        held_out: float = 0.2,
        seed: int = 0,
        progress: bool = True,
        **lens_kwargs: Any,
    ) -> TunedLens:
        """Fit translators on ``clips`` under ``prompts`` (default: every SAKURA prompt of
        every format) to minimise KL(final ‖ layer) over every non-padding position; a
        ``held_out`` share of the clips measures the KL after training (``history``).

        The residuals and final distributions are computed once (one forward pass per clip
        and prompt); training then touches only the translators.
        """
        from tqdm.auto import tqdm

        from ..tasks import SAKURA_TASKS

        steps = whole_number(steps, "TunedLens.train: steps", low=1)
        lr = finite_number(lr, "TunedLens.train: lr", low=0, low_open=True)
        weight_decay = finite_number(weight_decay, "TunedLens.train: weight_decay", low=0)
        batch_positions = whole_number(batch_positions, "TunedLens.train: batch_positions", low=1)
        held_out = finite_number(held_out, "TunedLens.train: held_out", low=0, high=0.9)
        if isinstance(clips, (np.ndarray, torch.Tensor)) or not isinstance(clips, Sequence) or not clips:
            raise ParameterError("TunedLens.train: clips must be a non-empty list of clips")
        if prompts is None:
            prompts = [t.prompt(f) for t in SAKURA_TASKS.values() for f in ("P1", "P2", "P3")]
        gen = np.random.default_rng(seed)
        order = gen.permutation(len(clips))
        n_val = max(1, round(held_out * len(clips))) if len(clips) > 1 else 0
        split = {"val": [clips[i] for i in order[:n_val]], "train": [clips[i] for i in order[n_val:]]}
        data = {k: collect_residuals(model, v, prompts, sampling_rate) for k, v in split.items() if v}
        lens = cls.identity(model, **lens_kwargs)
        tr = lens._fitted()
        opt = torch.optim.AdamW(tr.parameters(), lr=lr, weight_decay=weight_decay)
        resid, target = data["train"]
        torch.manual_seed(seed)
        before = {k: lens.kl(model, *v) for k, v in data.items()}
        # The loop trains, so it needs gradients even when the caller switched them off.
        with torch.enable_grad():
            for _ in tqdm(range(steps), desc="tuned lens", disable=not progress):
                pick = torch.randint(0, resid.shape[1], (min(batch_positions, resid.shape[1]),))
                loss = sum((_kl(model, tr, resid[layer, pick], target[pick], layer) for layer in range(model.n_layers)),
                           torch.zeros(()))
                opt.zero_grad()
                (loss / model.n_layers).backward()
                opt.step()
        lens.history = {"steps": steps, "kl_before": {k: v.tolist() for k, v in before.items()},
                        "kl_after": {k: lens.kl(model, *v).tolist() for k, v in data.items()}}
        return lens

    @torch.no_grad()
    def kl(self, model: HookedAudioLM, resid: Tensor, target_logprobs: Tensor) -> Tensor:
        """Mean KL(final ‖ layer) per layer 0..L-1 over the given positions."""
        return torch.stack([_kl(model, self._fitted(), resid[layer], target_logprobs, layer)
                            for layer in range(model.n_layers)])

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write ``translators.safetensors`` and ``tuned_lens.json`` into the folder ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tr = self._fitted()
        save_file({"weight": tr.weight.detach().cpu().contiguous(), "bias": tr.bias.detach().cpu().contiguous()},
                  str(path / "translators.safetensors"))
        meta = {"format": FORMAT_VERSION, "n_layers": tr.weight.shape[0], "d_model": tr.weight.shape[1],
                "history": self.history}
        tmp = path / "tuned_lens.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(path / "tuned_lens.json")
        return path

    @classmethod
    def load(cls, path: str | Path, model: HookedAudioLM, **lens_kwargs: Any) -> TunedLens:
        """Load translators saved by :meth:`save` for ``model``.

        The metadata is checked against the tensors (names, count, shapes, finite values) and
        against the model (layers, width); each mismatch is a :class:`TunedLensFileError`
        naming the file.
        """
        meta, tensors = read_lens_files(path)
        n_layers, d_model = meta["n_layers"], meta["d_model"]
        if (n_layers, d_model) != (model.n_layers, model.cfg.d_model):
            raise TunedLensFileError(
                f"the tuned lens in {path} is for {n_layers} layers × d_model {d_model}, "
                f"the model has {model.n_layers} layers × d_model {model.cfg.d_model}"
            )
        lens = cls.identity(model, **lens_kwargs)
        with torch.no_grad():
            lens._fitted().weight.copy_(tensors["weight"])
            lens._fitted().bias.copy_(tensors["bias"])
        lens.history = meta.get("history", {})
        return lens


def read_lens_files(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``tuned_lens.json`` and ``translators.safetensors`` of the folder ``path``, checked
    against each other; :class:`TunedLensFileError` names the file and the mismatch."""
    from safetensors.torch import load_file

    path = Path(path)
    meta_file, tensor_file = path / "tuned_lens.json", path / "translators.safetensors"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no tuned lens in {path} (tuned_lens.json is missing)")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise TunedLensFileError(f"{meta_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise TunedLensFileError(f"{meta_file}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_VERSION:
        raise TunedLensFileError(f"{meta_file}: format {meta.get('format')!r}; this version reads format {FORMAT_VERSION}")
    for key in ("n_layers", "d_model"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TunedLensFileError(f"{meta_file}: {key} must be a positive whole number, got {value!r}")
    if not tensor_file.is_file():
        raise TunedLensFileError(f"{tensor_file} is missing (the metadata in {meta_file} has no tensors)")
    try:
        tensors = load_file(str(tensor_file))
    except Exception as exc:  # safetensors raises several types; the message names the file
        raise TunedLensFileError(f"{tensor_file}: cannot read tensors ({exc})") from exc
    if set(tensors) != {"weight", "bias"}:
        missing, extra = sorted({"weight", "bias"} - set(tensors)), sorted(set(tensors) - {"weight", "bias"})
        raise TunedLensFileError(f"{tensor_file}: expected the tensors 'weight' and 'bias'; missing {missing}, "
                                 f"unexpected {extra}")
    n, d = meta["n_layers"], meta["d_model"]
    for name, shape in (("weight", (n, d, d)), ("bias", (n, d))):
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise TunedLensFileError(f"{tensor_file}: {name} has shape {tuple(t.shape)}, the metadata "
                                     f"({n} layers, d_model {d}) says {shape}")
        if not t.is_floating_point():
            raise TunedLensFileError(f"{tensor_file}: {name} has dtype {t.dtype}; expected floats")
        if not torch.isfinite(t).all():
            raise TunedLensFileError(f"{tensor_file}: {name} holds NaN or infinite values")
    return meta, tensors


def _kl(model: HookedAudioLM, translators: Translators, resid: Tensor, target_logprobs: Tensor, layer: int) -> Tensor:
    logits = model.unembed(model.final_norm(translators(resid, layer))).float()
    logq = torch.log_softmax(logits, -1)
    return (target_logprobs.exp() * (target_logprobs - logq)).sum(-1).mean()


@torch.no_grad()
def collect_residuals(
    model: HookedAudioLM, clips: Sequence[np.ndarray], prompts: Sequence[Prompt], sampling_rate: int, chunk: int = 8
) -> tuple[Tensor, Tensor]:
    """Residuals ``(L, N, d)`` at layers 0..L-1 and the model's final log-probabilities
    ``(N, vocab)`` over every non-padding position of every (clip, prompt)."""
    names = [model.resid_name(layer) for layer in range(model.n_layers)]
    resids, targets = [], []
    for prompt in prompts:
        for start in range(0, len(clips), chunk):
            batch: AudioBatch = model.prepare(list(clips[start:start + chunk]), sampling_rate, prompt, truncate=True)
            logits, cache = model.run_with_cache(batch, names_filter=names)
            assert logits is not None  # return_type="logits"
            keep = batch.inputs["attention_mask"].bool().to(logits.device)
            resids.append(torch.stack([cache[n][keep] for n in names]).detach())
            targets.append(torch.log_softmax(logits[keep].float(), -1))
    return torch.cat(resids, 1), torch.cat(targets, 0)
