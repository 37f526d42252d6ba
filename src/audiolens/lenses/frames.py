"""Tidy tables of lens results, for pandas, plotting libraries and Parquet.

:func:`lens_frame` has one row per sample × position × layer × label; :func:`info_frame` one row
per position × layer (the information score of Eq. 2 with its counts). ``LensResult.to_frame()``,
``LensResult.info_frame()`` and the ``Study`` methods of the same names call these; a study's
frames add ``model, attribute, prompt, intervention`` columns in front.

Example:
    >>> import torch
    >>> from audiolens.lenses.result import LensResult
    >>> res = LensResult(label_logits=torch.tensor([[[[2.0, 0.0]]], [[[0.0, 1.0]]]]),
    ...                  targets=torch.tensor([1]), labels=("male", "female"),
    ...                  positions=("last",), label_token_ids=(5, 6), ids=["clip"])
    >>> lens_frame(res)[["layer", "label", "target", "probability", "correct"]].round(3)
       layer   label  target  probability  correct
    0      0    male  female        0.881    False
    1      0  female  female        0.119    False
    2      1    male  female        0.269     True
    3      1  female  female        0.731     True
    >>> info_frame(res).round(3)
      position  layer  n  n_correct  info_score    low   high
    0     last      0  1          0         0.0  0.000  0.793
    1     last      1  1          1         1.0  0.207  1.000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from .. import metrics

if TYPE_CHECKING:
    import pandas as pd
    from torch import Tensor


class Scored(Protocol):
    """What the tables read of a lens result (:class:`~audiolens.lenses.result.LensResult`)."""

    label_logits: Tensor
    label_probs: Tensor | None
    targets: Tensor | None
    labels: tuple[str, ...]
    positions: tuple[str, ...]
    ids: list[str]

    def logits_at(self, position: str = "last") -> Tensor: ...

#: Columns of :func:`lens_frame` (``vocab_probability`` only when the lens computed it).
LENS_COLUMNS = (
    "id", "label", "target", "layer", "position", "logit", "probability", "vocab_probability",
    "prediction", "correct",
)
#: Columns of :func:`info_frame`.
INFO_COLUMNS = ("position", "layer", "n", "n_correct", "info_score", "low", "high")


def _positions(result: Scored, positions: str | Sequence[str] | None) -> list[str]:
    if positions is None:
        return list(result.positions)
    chosen = [positions] if isinstance(positions, str) else [str(p) for p in positions]
    unknown = [p for p in chosen if p not in result.positions]
    if unknown:
        raise KeyError(f"positions {unknown} not read; this result has {result.positions}")
    return chosen


def lens_frame(result: Scored, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
    """One row per sample × position × layer × label of ``result`` (in that order).

    Columns: ``id``; ``label`` (the label this row scores); ``target`` (the sample's true label,
    None without targets); ``layer`` (0 = embedding output); ``position``; ``logit``;
    ``probability`` (softmax over the label set); ``vocab_probability`` (the label's
    probability under the full-vocabulary softmax, when the lens ran with ``full_vocab=True``);
    ``prediction`` (the argmax label at that layer and position) and ``correct``
    (``prediction == target``, the quantity Eq. 2 averages; NA without targets).
    """
    import pandas as pd

    keep = [result.positions.index(p) for p in _positions(result, positions)]
    logits = result.label_logits[:, :, keep].double()  # (layers, batch, pos, labels)
    n_layers, n_samples, n_pos, n_labels = logits.shape
    # Rows ordered sample, position, layer, label: move the batch axis first, then flatten.
    order = (1, 2, 0, 3)
    sample, pos, layer, label = (
        a.ravel() for a in np.indices((n_samples, n_pos, n_layers, n_labels))
    )
    labels = np.array(result.labels, dtype=object)
    pred = metrics.predictions(logits).transpose(1, 2, 0)  # (batch, pos, layers)
    out = {
        "id": np.array(result.ids, dtype=object)[sample],
        "label": labels[label],
        "target": np.full(sample.size, None, dtype=object),
        "layer": layer.astype(np.int64),
        "position": np.array([result.positions[k] for k in keep], dtype=object)[pos],
        "logit": logits.permute(order).reshape(-1).numpy(),
        "probability": torch.softmax(logits, -1).permute(order).reshape(-1).numpy(),
    }
    if result.label_probs is not None:
        out["vocab_probability"] = result.label_probs[:, :, keep].double().permute(order).reshape(-1).numpy()
    out["prediction"] = labels[pred[sample, pos, layer]]
    if result.targets is None:
        out["correct"] = pd.array([pd.NA] * sample.size, dtype="boolean")
    else:
        targets = result.targets.numpy()[sample]
        out["target"] = labels[targets]
        out["correct"] = pred[sample, pos, layer] == targets
    return pd.DataFrame(out)


def info_frame(result: Scored, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
    """One row per position × layer: ``n`` samples, ``n_correct`` of them predicted right,
    ``info_score = n_correct / n`` (Eq. 2, the same numbers as ``result.info_scores``) and its
    95 % Wilson interval ``low``–``high``."""
    import pandas as pd

    if result.targets is None:
        raise ValueError("this result has no targets: pass labels= to model.prepare")
    targets = result.targets.numpy()
    rows = []
    for p in _positions(result, positions):
        right = (metrics.predictions(result.logits_at(p)) == targets).sum(axis=-1)  # per layer
        low, high = metrics.wilson_interval(right, len(targets))
        for layer, k in enumerate(right.tolist()):
            rows.append((p, layer, len(targets), k, k / len(targets), float(np.asarray(low)[layer]),
                         float(np.asarray(high)[layer])))
    return pd.DataFrame(rows, columns=list(INFO_COLUMNS))


__all__ = ["INFO_COLUMNS", "LENS_COLUMNS", "Scored", "info_frame", "lens_frame"]
