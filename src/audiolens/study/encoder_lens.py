"""The encoder-lens phase of a study: per attribute, what the LLM answers when the audio
encoder stops after each of its layers (:class:`~audiolens.lenses.encoder.EncoderLens`).

Per attribute, the encoder lens runs once over the study's clips (plain run, the probes' prompt)
and its label logits at the last token, per clip and encoder layer, are written under the
model's records (``encoder_lens.{prompt}.csv``: ``id``, ``encoder_layer``, ``target``, one
``logit_{k}`` column per label), then a setup file that marks the run complete. They are small
((n_encoder_layers + 1) × clips × labels), and everything else (information score, accuracy,
per-clip correctness, the probe figure's encoder-lens line) is computed from them. An
interrupted attribute is redone as a whole; a finished one (same clips, prompt, labels and
encoder depth) is skipped. A model without encoder layers (the demo model) or without encoder
hooks is skipped with a note.

Example:
    >>> phase = EncoderLensPhase(store, "demo", datasets, make_batch)  # doctest: +SKIP
    >>> phase.run(model, batch_size=8)                                # doctest: +SKIP
    >>> encoder_lens_result(store, "demo", "gender").info_scores()     # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..files import write_atomic
from ..lenses.encoder import EncoderLens, EncoderLensResult
from ..lenses.result import LensResult
from .records import RecordError, RecordStore

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import AudioBatch
    from ..data import AttributeDataset, Sample
    from ..hooked import HookedAudioLM
    from ..tasks import Prompt

#: The intervention name of encoder-lens rows in :meth:`Report.to_frame
#: <audiolens.study.report.Report.to_frame>`.
ENCODER_LENS = "encoder_lens"


def why_no_encoder_lens(model: HookedAudioLM) -> str | None:
    """Why ``model`` has no encoder lens to run (None: it has one)."""
    if model.encoder_missing:
        return f"it offers no encoder hooks ({model.encoder_missing})"
    if model.n_encoder_layers == 0:
        return "its audio encoder has no transformer layers (n_encoder_layers is 0)"
    return None


class EncoderLensPhase:
    """Runs and stores the encoder lens of ``datasets`` for one model.

    Args:
        store: the study's records.
        model_name: the name the records are kept under.
        datasets: one data set per attribute.
        make_batch: ``(samples, prompt) -> AudioBatch`` (the study's own batching and truncation).
        prompt: the prompt format (``"P1"``..``"P3"``).
        say: where notes go (what is reused, what is skipped).
    """

    def __init__(
        self, store: RecordStore, model_name: str, datasets: Sequence[AttributeDataset],
        make_batch: Callable[[Sequence[Sample], Prompt], AudioBatch], *, prompt: str = "P3",
        say: Callable[[str], None] | None = None,
    ):
        self.store = store
        self.model_name = model_name
        self.datasets = list(datasets)
        self.make_batch = make_batch
        self.prompt = prompt
        self.say = say or (lambda _: None)

    def setup(self, ds: AttributeDataset, model: HookedAudioLM) -> dict[str, Any]:
        """What a stored run must match to be reused (the answer is read at the decoder's last
        layer, at the last token)."""
        return {"prompt": self.prompt, "labels": list(ds.task.labels), "ids": [s.id for s in ds],
                "n_encoder_layers": model.n_encoder_layers, "decoder_layer": model.n_layers, "position": "last"}

    def done(self, ds: AttributeDataset, model: HookedAudioLM) -> bool:
        stored = self.store.encoder_lens_setup(self.model_name, ds.task.name, self.prompt)
        return stored == self.setup(ds, model)

    def run(self, model: HookedAudioLM, *, batch_size: int = 8, backend: str = "hooks",
            progress: bool = True) -> None:
        """Run the encoder lens of every attribute not already on disk with this setup; on a
        model without encoder layers, only say so."""
        from tqdm.auto import tqdm

        why = why_no_encoder_lens(model)
        if why is not None:
            self.say(f"{self.model_name}: no encoder lens: {why}")
            return
        reused = [ds.task.name for ds in self.datasets if self.done(ds, model)]
        if reused:
            self.say(f"{self.model_name}: encoder lens of {', '.join(reused)} found on disk, reusing it")
        for ds in self.datasets:
            if ds.task.name in reused:
                continue
            lens = EncoderLens(ds.task)
            parts: list[LensResult] = []
            samples = list(ds.samples)
            for start in tqdm(range(0, len(samples), batch_size), desc=f"encoder lens {ds.name}",
                              disable=not progress):
                batch = self.make_batch(samples[start:start + batch_size], ds.task.prompt(self.prompt))
                parts.append(lens.run(model, batch, backend=backend).lens)
            result = LensResult.concat(parts)
            logits_path, setup_path = self.store.encoder_lens_paths(self.model_name, ds.task.name, self.prompt)
            write_atomic(logits_path, logits_frame(result).to_csv(index=False))
            write_atomic(setup_path, json.dumps(self.setup(ds, model), ensure_ascii=False) + "\n")


def logits_frame(result: LensResult) -> pd.DataFrame:
    """One row per clip and encoder layer: ``id``, ``encoder_layer``, ``target`` and the label
    logits at the last token (``logit_0``.. in label order): what the phase stores."""
    import pandas as pd

    logits = result.logits_at("last").numpy()  # (encoder layers, clips, labels)
    layers, clips, k = logits.shape
    targets = result.targets.numpy() if result.targets is not None else np.full(clips, -1)
    frame = pd.DataFrame({
        "id": np.tile(np.asarray(result.ids, dtype=object), layers),
        "encoder_layer": np.repeat(np.arange(layers), clips),
        "target": np.tile(targets, layers),
    })
    for j in range(k):
        frame[f"logit_{j}"] = logits[:, :, j].reshape(-1)
    return frame


def encoder_lens_result(store: RecordStore, model: str, attribute: str, prompt: str | None = None) -> EncoderLensResult:
    """The stored encoder lens of ``attribute`` (under ``prompt``, else the only one stored),
    checked against its setup: every clip of the setup once per encoder layer, targets in range.

    Raises :class:`~audiolens.study.records.RecordError` when nothing is stored or the file does
    not fit its setup."""
    import pandas as pd

    prompts = [p for a, p in store.encoder_lens_runs(model) if a == attribute]
    if prompt is None:
        if not prompts:
            raise RecordError(f"no stored encoder lens of {attribute!r} for {model} under {store.root}")
        prompt = prompts[0]
    setup = store.encoder_lens_setup(model, attribute, prompt)
    if setup is None:
        raise RecordError(f"no stored encoder lens of {attribute!r} under {prompt} for {model} under {store.root}")
    path = store.encoder_lens_paths(model, attribute, prompt)[0]
    df = pd.read_csv(path, dtype={"id": str})
    ids, labels, layers = list(setup["ids"]), tuple(setup["labels"]), int(setup["n_encoder_layers"]) + 1
    k = len(labels)
    expected = {(i, layer) for i in ids for layer in range(layers)}
    got = list(zip(df["id"], df["encoder_layer"]))
    if len(got) != len(expected) or set(got) != expected:
        raise RecordError(f"{path}: rows do not fit its setup (each of {len(ids)} clips once per encoder layer "
                          f"0..{layers - 1}); delete it and {path.with_suffix('.json').name} to run it again")
    if not df["target"].between(-1, k - 1).all():
        raise RecordError(f"{path}: a target outside 0..{k - 1}")
    df = df.set_index(["encoder_layer", "id"]).sort_index()
    logits = np.stack([df.loc[layer].loc[ids, [f"logit_{j}" for j in range(k)]].to_numpy(np.float32)
                       for layer in range(layers)])  # (encoder layers, clips, labels)
    targets = df.loc[0].loc[ids, "target"].to_numpy()
    lens = LensResult(label_logits=torch.from_numpy(logits)[:, :, None], labels=labels, positions=("last",),
                      targets=None if (targets < 0).any() else torch.from_numpy(targets.astype(np.int64)),
                      label_token_ids=(), ids=ids)
    return EncoderLensResult(lens=lens, decoder_layer=int(setup["decoder_layer"]))


def encoder_lens_table(store: RecordStore, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per model, attribute and encoder layer: the stored encoder lens's ``info_score`` (the
    LLM's accuracy at the last token when the encoder stops there) with its Wilson interval and
    ``n`` (empty if none stored)."""
    import pandas as pd

    from ..metrics import info_score_interval

    rows = []
    for model in models or store.models():
        for attribute, prompt in store.encoder_lens_runs(model):
            res = encoder_lens_result(store, model, attribute, prompt)
            if res.lens.targets is None:
                continue  # clips without labels have no score
            scores = res.info_scores()
            lo, hi = np.atleast_1d(*info_score_interval(res.logits_at("last"), res.lens.targets))
            for layer, score in enumerate(scores):
                rows.append({"model": model, "attribute": attribute, "prompt": prompt, "encoder_layer": layer,
                             "info_score": float(score), "ci_low": float(lo[layer]), "ci_high": float(hi[layer]),
                             "n": len(res)})
    return pd.DataFrame(rows)


def encoder_lens_rows(store: RecordStore, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored encoder lens as rows of :meth:`Report.to_frame
    <audiolens.study.report.Report.to_frame>`: intervention ``"encoder_lens"``, ``stack``
    ``"encoder"``, ``layer`` the encoder layer at which the encoder stopped, one row per clip ×
    encoder layer × label as :func:`~audiolens.lenses.frames.lens_frame` gives them."""
    import pandas as pd

    from ..lenses.frames import lens_frame

    parts = []
    for model in models or store.models():
        for attribute, prompt in store.encoder_lens_runs(model):
            frame = lens_frame(encoder_lens_result(store, model, attribute, prompt).lens)
            frame.insert(0, "model", model)
            frame.insert(1, "attribute", attribute)
            frame.insert(2, "prompt", prompt)
            frame.insert(3, "intervention", ENCODER_LENS)
            frame["stack"] = "encoder"
            parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


__all__ = ["ENCODER_LENS", "EncoderLensPhase", "encoder_lens_result", "encoder_lens_rows", "encoder_lens_table",
           "logits_frame", "why_no_encoder_lens"]
