"""The classic logit-lens picture: what each layer's residual decodes to, at every position.

``TokenLens(top_k=5).run(model, batch, positions="audio")`` applies the final norm and the
full-vocabulary head to the residual at every layer and asked position and keeps the top-k
tokens with their probabilities. Audio positions carry their time in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..batch import AudioBatch, position_index
from ..checks import whole_number
from ..errors import NonFiniteWarning, ParameterError, warn_user

if TYPE_CHECKING:
    import pandas as pd

    from ..hooked import HookedAudioLM


@dataclass
class TokenLensResult:
    """``token_ids[ℓ, r, j, i]`` / ``probs[...]``: the i-th most likely token at layer ℓ
    (0 = embedding output), row r, asked position j. Positions a row does not have (a shorter
    span) hold id -1 and probability NaN."""

    token_ids: Int[Tensor, "layers batch pos k"]
    probs: Float[Tensor, "layers batch pos k"]
    positions: Int[Tensor, "batch pos"]
    tokens: list[list[list[list[str]]]]
    seconds: Float[Tensor, "batch pos"] | None = None
    ids: list[str] = field(default_factory=list)
    inputs: list[list[str]] = field(default_factory=list)  # the input token at each asked position

    @property
    def n_layers(self) -> int:
        return self.token_ids.shape[0] - 1

    def top1(self, row: int = 0) -> list[list[str]]:
        """The most likely token per (layer, position) of one row."""
        return [[pos[0] for pos in layer[row]] for layer in self.tokens]

    def to_frame(self) -> pd.DataFrame:
        """One row per (sample, layer, position, rank): id, layer, position, seconds, rank,
        token, token_id, probability."""
        import pandas as pd

        L, B, P, K = self.token_ids.shape
        rows = []
        for r in range(B):
            for layer in range(L):
                for j in range(P):
                    if int(self.positions[r, j]) < 0:
                        continue
                    for k in range(K):
                        rows.append({
                            "id": self.ids[r], "layer": layer, "position": int(self.positions[r, j]),
                            "seconds": None if self.seconds is None else float(self.seconds[r, j]),
                            "rank": k + 1, "token": self.tokens[layer][r][j][k],
                            "token_id": int(self.token_ids[layer, r, j, k]),
                            "probability": float(self.probs[layer, r, j, k]),
                        })
        return pd.DataFrame(rows)

    def plot(self, row: int = 0, ax: Any = None) -> Any:
        """Heatmap of the top-1 token's probability per (layer, position), tokens written in."""
        from .plots import plot_token_lens

        return plot_token_lens(self, row=row, ax=ax)


@dataclass
class TokenLens:
    """Top-k decoded tokens per layer and position (the logit lens over the whole vocabulary).

    Example:
        >>> tok = al.TokenLens(top_k=5).run(model, batch, positions="audio")  # doctest: +SKIP
        >>> tok.top1(row=0)[-1][:5]  # last layer, first five audio tokens  # doctest: +SKIP
        >>> tok.plot()  # doctest: +SKIP
    """

    top_k: int = 5

    def __post_init__(self) -> None:
        self.top_k = whole_number(self.top_k, "TokenLens: top_k", low=1)

    @torch.no_grad()
    def run(
        self, model: HookedAudioLM, batch: AudioBatch, positions: str | int | Sequence[str | int] | Tensor = "audio"
    ) -> TokenLensResult:
        if self.top_k > model.W_U.shape[0]:
            raise ParameterError(f"TokenLens: top_k = {self.top_k} is more than the {model.W_U.shape[0]} tokens of the vocabulary")
        index = position_index(batch, positions)
        names = [model.resid_name(layer) for layer in range(model.n_layers + 1)]
        _, cache = model.run_with_cache(batch, names_filter=names, positions=index, return_type=None)
        valid = (index >= 0).to(model.device)
        ids, probs = [], []
        reported = False
        for layer, name in enumerate(names):
            if not reported and not torch.isfinite(cache[name].to(valid.device)[valid]).all():
                warn_user(f"NaN or inf in the residual {name} (layer {layer}); the tokens decoded "
                          "there are meaningless", NonFiniteWarning)
                reported = True
            h = cache[name].nan_to_num()  # missing positions: decoded, then blanked below
            p = torch.softmax(model.unembed(model.final_norm(h)).float(), -1)
            top = p.topk(self.top_k, dim=-1)
            ids.append(top.indices.masked_fill(~valid[..., None], -1).cpu())
            probs.append(top.values.masked_fill(~valid[..., None], float("nan")).cpu())
        token_ids, token_probs = torch.stack(ids), torch.stack(probs)
        convert = model.tokenizer.convert_ids_to_tokens
        tokens = [[[convert([i for i in pos.tolist()]) if pos[0] >= 0 else [""] * self.top_k
                    for pos in row] for row in layer] for layer in token_ids]
        inputs = []
        if "input_ids" in batch.inputs:
            ids_in = batch.inputs["input_ids"]
            inputs = [[convert(int(ids_in[r, p])) if p >= 0 else "" for p in index[r].tolist()]
                      for r in range(len(batch))]
        return TokenLensResult(
            token_ids=token_ids, probs=token_probs, positions=index, tokens=tokens,
            seconds=_seconds(model, batch, index), ids=list(batch.ids), inputs=inputs,
        )


def _seconds(model: HookedAudioLM, batch: AudioBatch, index: Tensor) -> Tensor | None:
    """Time of each asked audio position (start of its audio token), NaN elsewhere."""
    rate = model.architecture.tokens_per_second
    if rate is None or "audio" not in batch.spans:
        return None
    audio = batch.spans["audio"]
    # rank of each position within its row's audio span
    rank = audio.long().cumsum(1) - 1
    rows = torch.arange(len(batch))[:, None]
    safe = index.clamp(min=0)
    is_audio = audio[rows, safe] & (index >= 0)
    out = rank[rows, safe].float() / rate
    return torch.where(is_audio, out, torch.tensor(float("nan")))
