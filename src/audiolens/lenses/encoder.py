"""The encoder lens: what the LLM answers when the audio encoder stops after layer ℓ.

For each encoder layer ℓ = 0..n_encoder_layers (0 = ``encoder.hook_embed``, ℓ = the output of
encoder layer ℓ), layer ℓ's residual takes the place of the last encoder layer's output, so the
encoder's own final norm, pooling and projector read it, and the whole decoder runs on the
result. The answer is read at the last token (and any other asked position) through the final
norm and the head, as the logit lens reads the decoder's last layer. At ℓ = n_encoder_layers
nothing is replaced: it is the plain run.

Cost: one forward over (n_encoder_layers + 1) copies of the batch, i.e. one decoder pass per
encoder layer, batched (``layers_per_pass`` splits it to bound memory). Each copy's residual
at layer ℓ is taken from the same pass, so the encoder runs once per copy and nothing is cached
across passes.

Example:
    >>> res = al.EncoderLens(task, layers_per_pass=4).run(model, batch)  # doctest: +SKIP
    >>> res.accuracy()  # per encoder layer, the plain run last           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..backends import execute
from ..batch import AudioBatch, gather_positions
from ..errors import HookUnavailable
from ..hooked import HookedAudioLM
from ..interventions import HookFn
from .base import Asked, LabelLens
from .result import LensResult

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class EncoderLensResult:
    """The model's label logits per encoder layer at which the encoder was stopped.

    ``lens`` is a :class:`~audiolens.lenses.result.LensResult` whose layer axis is the encoder
    layer ℓ = 0..n_encoder_layers (its last entry is the plain run); every position it holds is
    read at ``decoder_layer`` of the decoder (the model's own output by default).

    Example:
        >>> res = al.EncoderLens(task).run(model, batch)  # doctest: +SKIP
        >>> res.accuracy()[-1] == res.lens.accuracy()      # doctest: +SKIP
    """

    lens: LensResult
    decoder_layer: int

    @property
    def n_encoder_layers(self) -> int:
        return self.lens.n_layers

    @property
    def labels(self) -> tuple[str, ...]:
        return self.lens.labels

    @property
    def ids(self) -> list[str]:
        return self.lens.ids

    def __len__(self) -> int:
        """How many clips (the ``n`` of every score's interval)."""
        return len(self.lens)

    def logits_at(self, position: str = "last") -> Float[Tensor, "encoder_layers batch labels"]:
        """Label logits per encoder layer and sample at ``position``."""
        return self.lens.logits_at(position)

    def info_scores(self, position: str = "last") -> np.ndarray:
        """Eq. 2 per encoder layer (length n_encoder_layers + 1) at ``position``."""
        return self.lens.info_scores(position)

    def accuracy(self) -> np.ndarray:
        """The model's accuracy at the last token when the encoder stops after each layer ℓ
        (at the last token this is the information score: the answer is the head's argmax
        over the labels)."""
        return self.lens.info_scores("last")

    def label_probs(self, position: str = "last") -> Float[Tensor, "encoder_layers batch labels"]:
        """Each label's probability under the softmax over the labels, per encoder layer."""
        return torch.softmax(self.logits_at(position).float(), dim=-1)

    def predictions(self, layer: int | None = None, position: str = "last") -> np.ndarray:
        """Predicted label index per sample with the encoder stopped after ``layer`` (default:
        the full encoder)."""
        return self.lens.predictions(position, layer)

    def to_frame(self) -> pd.DataFrame:
        """:meth:`LensResult.to_frame` with the layer column renamed ``encoder_layer``."""
        return self.lens.to_frame().rename(columns={"layer": "encoder_layer"})


@dataclass
class EncoderLens(LabelLens[EncoderLensResult]):
    """Stop the audio encoder after each layer and read the decoder's answer: ``run`` gives the
    label logits per encoder layer 0..n_encoder_layers at every asked position, the
    interventions (e.g. :class:`~audiolens.interventions.AudioMask`) applied to every encoder
    layer's run alike.

    Args:
        labels, label_tokens, positions: see :class:`~audiolens.lenses.base.LabelLens`
            (positions default to the last token).
        decoder_layer: the decoder layer read with the logit lens (None: the last, i.e. the
            model's own answer).
        layers_per_pass: how many encoder layers (copies of the batch) one forward holds (None:
            all of them).

    Example:
        >>> import audiolens as al, numpy as np
        >>> model = al.models.tiny("qwen2_audio")
        >>> task = al.sakura_task("gender")
        >>> wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32")
        >>> batch = model.prepare([wav], 16000, task.prompt("P3"), labels=["male"])
        >>> res = EncoderLens(task).run(model, batch)
        >>> res.accuracy().shape
        (3,)
    """

    decoder_layer: int | None = None
    layers_per_pass: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layers_per_pass is not None and self.layers_per_pass < 1:
            raise ValueError(f"layers_per_pass must be at least 1, got {self.layers_per_pass}")

    def _ask(self, model: HookedAudioLM, batch: AudioBatch) -> Asked:
        if model.encoder_missing:
            raise HookUnavailable(f"EncoderLens: {model.architecture.name} offers no encoder hooks "
                                  f"({model.encoder_missing})")
        return super()._ask(model, batch)

    def _read(self, model: HookedAudioLM, batch: AudioBatch, asked: Asked, edits: list[tuple[str, HookFn]],
              *, backend: str, remote: bool) -> EncoderLensResult:
        """The decoder's residual at ``decoder_layer`` with the encoder stopped after each layer,
        ``layers_per_pass`` encoder layers per forward."""
        decoder_layer = model.n_layers if self.decoder_layer is None else self.decoder_layer
        read = model.resid_name(decoder_layer)
        layers = list(range(model.n_encoder_layers + 1))
        per_pass = self.layers_per_pass or len(layers)
        parts = [self._pass(model, batch, layers[g:g + per_pass], edits, read, asked.index, backend, remote)
                 for g in range(0, len(layers), per_pass)]
        stacked = torch.cat(parts)  # (encoder layers, batch, positions, d_model)
        label_logits = model.unembed(model.final_norm(stacked), asked.token_ids)
        return EncoderLensResult(lens=self._lens_result(batch, asked, label_logits), decoder_layer=decoder_layer)

    def _pass(self, model: HookedAudioLM, batch: AudioBatch, layers: list[int], edits: list[tuple[str, HookFn]],
              read: str, index: Tensor, backend: str, remote: bool) -> Tensor:
        """One forward over ``len(layers)`` copies of the batch (copy c holds rows c·B..c·B+B-1)
        in which copy c's encoder stops after ``layers[c]``; the residual ``read`` at ``index``."""
        k, rows, n = len(layers), len(batch), model.n_encoder_layers
        inputs = {key: v.repeat(k, *[1] * (v.ndim - 1)) for key, v in batch.inputs.items()}
        stopped: dict[int, Tensor] = {}
        hooks = [(name, _per_copy(fn, k, rows)) for name, fn in edits]

        def stop_at(c: int) -> HookFn:
            def keep(act: Tensor, hook: Any) -> None:
                stopped[c] = act[c * rows:(c + 1) * rows].clone()
            return keep

        def replace_last(act: Tensor, hook: Any) -> Tensor:
            act = act.clone()
            for c, part in stopped.items():
                act[c * rows:(c + 1) * rows] = part.to(act.device)
            return act

        early = [(c, layer) for c, layer in enumerate(layers) if layer < n]
        for c, layer in early:
            hooks.append((model.encoder_name(layer), stop_at(c)))
        if early:
            hooks.append((model.encoder_name(n), replace_last))
        kept: dict[str, Tensor] = {}

        def keep_read(act: Tensor, hook: Any) -> None:
            kept["x"] = gather_positions(act, index.repeat(k, 1)).to(model.device)

        hooks.append((read, keep_read))
        execute(model, inputs, hooks, backend=backend, remote=remote)
        return kept["x"].reshape(k, rows, *kept["x"].shape[1:])


def _per_copy(fn: HookFn, k: int, rows: int) -> HookFn:
    """``fn`` (written for one batch of ``rows`` rows) applied to each of ``k`` stacked copies."""

    def on_copies(act: Tensor, hook: Any) -> Tensor | None:
        if k == 1:
            return fn(act, hook)
        parts, changed = [], False
        for c in range(k):
            part = act[c * rows:(c + 1) * rows]
            new = fn(part, hook)
            if new is not None and new is not part:
                changed = True
                part = new
            parts.append(part)
        return torch.cat(parts) if changed else None

    return on_copies
