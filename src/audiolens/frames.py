"""Tidy tables of lens results, for pandas, plotting libraries and Parquet.

:func:`lens_frame` has one row per sample × position × layer × label; :func:`info_frame` one row
per position × layer (the information score of Eq. 2 with its counts). ``LensResult.to_frame()``,
``LensResult.info_frame()`` and the ``Study`` methods of the same names call these; a study's
frames add ``model, attribute, prompt, intervention`` columns in front.

Example:
    >>> import torch
    >>> from audiolens.lens import LensResult
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

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import metrics

if TYPE_CHECKING:
    import pandas as pd

    from .lens import LensResult
    from .records import RecordStore

#: Columns of :func:`lens_frame` (``vocab_probability`` only when the lens computed it).
LENS_COLUMNS = (
    "id", "label", "target", "layer", "position", "logit", "probability", "vocab_probability",
    "prediction", "correct",
)
#: Columns of :func:`info_frame`.
INFO_COLUMNS = ("position", "layer", "n", "n_correct", "info_score", "low", "high")


def _positions(result: LensResult, positions: str | Sequence[str] | None) -> list[str]:
    if positions is None:
        return list(result.positions)
    chosen = [positions] if isinstance(positions, str) else [str(p) for p in positions]
    unknown = [p for p in chosen if p not in result.positions]
    if unknown:
        raise KeyError(f"positions {unknown} not read; this result has {result.positions}")
    return chosen


def lens_frame(result: LensResult, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
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


def info_frame(result: LensResult, positions: str | Sequence[str] | None = None) -> pd.DataFrame:
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
            rows.append((p, layer, len(targets), k, k / len(targets), float(low[layer]), float(high[layer])))
    return pd.DataFrame(rows, columns=list(INFO_COLUMNS))


def stack(frames: Iterable[tuple[Mapping[str, object], pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate frames, each with its ``keys`` as constant columns in front.

    Example:
        >>> import pandas as pd
        >>> stack([({"model": "m"}, pd.DataFrame({"x": [1, 2]}))])
          model  x
        0     m  1
        1     m  2
    """
    import pandas as pd

    parts = []
    for keys, df in frames:
        df = df.copy()
        for i, (name, value) in enumerate(keys.items()):
            df.insert(i, name, value)
        parts.append(df)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def over_records(store: RecordStore, table: Callable[[LensResult], pd.DataFrame]) -> pd.DataFrame:
    """``table`` (e.g. :func:`lens_frame`) of every lens result in ``store``, stacked under
    ``model, attribute, prompt, intervention`` columns."""
    return stack(
        (
            {"model": k.model, "attribute": k.attribute, "prompt": k.prompt,
             "intervention": k.intervention},
            table(store.result(k.model, k.attribute, k.prompt, k.intervention)),
        )
        for k in store.record_keys()
    )


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` as Parquet (needs ``pyarrow``: ``pip install audiolens[data]``).

    The file appears whole or not at all: it is written next to ``path`` and then renamed.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(
            "writing Parquet needs pyarrow: pip install 'audiolens[data]' (or pyarrow)"
        ) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = [
    "INFO_COLUMNS", "LENS_COLUMNS", "info_frame", "lens_frame", "over_records", "stack",
    "write_parquet",
]
