"""The probe phase of a study: layer-wise probes per attribute, stored like the rest.

Per attribute, :func:`~audiolens.analysis.probes.run_probes` runs once over the data set (one
forward pass per clip, the logit lens read in the same pass) and its per-layer table and
per-fold predictions are written under the model's records, then a setup file that marks the
run complete. Per-clip activations are never stored: a probe needs every clip's activation at
once, so an interrupted attribute is redone as a whole, and a finished one (same clips,
positions, folds, seed and prompt) is skipped.

Example:
    >>> phase = ProbePhase(store, "demo", datasets, positions="last")  # doctest: +SKIP
    >>> phase.run(model, batch_size=8)                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..analysis.probes import run_probes
from ..errors import AudioNote
from ..files import write_atomic
from .records import RecordStore

if TYPE_CHECKING:
    import pandas as pd

    from ..data import AttributeDataset
    from ..hooked import HookedAudioLM


class ProbePhase:
    """Runs and stores the probes of ``datasets`` for one model.

    Args:
        store: the study's records.
        model_name: the name the records are kept under.
        datasets: one data set per attribute.
        positions, folds, seed, prompt: as in :func:`~audiolens.analysis.probes.run_probes`.
        say: where notes go (which attributes are reused).
        train: per attribute, clips to fit the probes on; the attribute's own clips are then
            held out and scored (else: cross-validation over them).
    """

    def __init__(
        self, store: RecordStore, model_name: str, datasets: Sequence[AttributeDataset], *,
        positions: str = "last", folds: int = 5, seed: int = 0, prompt: str = "P3",
        say: Callable[[str], None] | None = None, train: Mapping[str, AttributeDataset] | None = None,
    ):
        self.store = store
        self.model_name = model_name
        self.datasets = list(datasets)
        self.positions = positions
        self.folds = folds
        self.seed = seed
        self.prompt = prompt
        self.say = say or (lambda _: None)
        self.train = dict(train or {})

    def setup(self, ds: AttributeDataset) -> dict[str, Any]:
        """What a stored run must match to be reused."""
        train = self.train.get(ds.task.name)
        return {"positions": self.positions, "folds": self.folds, "seed": self.seed, "prompt": self.prompt,
                "labels": list(ds.task.labels), "ids": [s.id for s in ds],
                "train_ids": None if train is None else [s.id for s in train]}

    def done(self, ds: AttributeDataset) -> bool:
        return self.store.probe_setup(self.model_name, ds.task.name, self.positions) == self.setup(ds)

    def run(self, model: HookedAudioLM, *, batch_size: int = 8, truncate: bool = False,
            progress: bool = True) -> None:
        """Probe every attribute not already on disk with this setup."""
        reused = [ds.task.name for ds in self.datasets if self.done(ds)]
        if reused:
            self.say(f"{self.model_name}: probes of {', '.join(reused)} found on disk, reusing them")
        for ds in self.datasets:
            if ds.task.name in reused:
                continue
            with warnings.catch_warnings():
                if truncate:
                    warnings.simplefilter("ignore", AudioNote)  # cutting was asked for
                train = self.train.get(ds.task.name)
                fit, held_out = (ds, None) if train is None else (train, ds)
                res = run_probes(model, fit, self.positions, held_out=held_out, prompt=self.prompt,
                                 folds=self.folds, seed=self.seed, batch_size=batch_size, truncate=truncate,
                                 progress=progress)
            table_path, preds_path, setup_path = self.store.probe_paths(
                self.model_name, ds.task.name, self.positions)
            write_atomic(table_path, res.table.to_csv(index=False))
            write_atomic(preds_path, res.predictions.to_csv(index=False))
            write_atomic(setup_path, json.dumps(self.setup(ds), ensure_ascii=False) + "\n")


def probe_tables(store: RecordStore, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored probe table, under ``model`` and ``attribute`` columns (empty if none)."""
    import pandas as pd

    parts = []
    for model in models or store.models():
        for attribute, positions in store.probe_runs(model):
            table = pd.read_csv(store.probe_paths(model, attribute, positions)[0])
            parts.append(table.assign(model=model, attribute=attribute))
    if not parts:
        return pd.DataFrame()
    df = pd.concat(parts, ignore_index=True)
    return df[["model", "attribute", *[c for c in df.columns if c not in ("model", "attribute")]]]


def probe_predictions(store: RecordStore, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored per-fold prediction as rows of :meth:`Report.to_frame
    <audiolens.study.report.Report.to_frame>`: ``intervention`` is ``"probe"`` (the probe) or
    ``"probe_control"`` (the shuffled-label control), ``target``/``prediction`` are label names,
    and ``stack``, ``fold`` say where."""
    import pandas as pd

    parts = []
    for model in models or store.models():
        meta = store.meta(model)
        for attribute, positions in store.probe_runs(model):
            labels = meta["attributes"][attribute]["labels"]
            setup = store.probe_setup(model, attribute, positions) or {}
            p = pd.read_csv(store.probe_paths(model, attribute, positions)[1], dtype={"id": str})
            for name, target, pred in (("probe", "target", "prediction"),
                                       ("probe_control", "control_target", "control_prediction")):
                parts.append(pd.DataFrame({
                    "model": model, "attribute": attribute, "prompt": setup.get("prompt"), "intervention": name,
                    "id": p["id"], "stack": p["stack"], "layer": p["layer"], "position": positions, "fold": p["fold"],
                    "target": [labels[i] for i in p[target]], "prediction": [labels[i] for i in p[pred]],
                    "correct": (p[target] == p[pred]).to_numpy(),
                }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


__all__ = ["ProbePhase", "probe_predictions", "probe_tables"]
