"""Layer-wise linear probes: is an attribute *present* in a layer's residual, whether or not the
model's head can read it there?

:func:`probe_layers` fits a standardized logistic regression (scikit-learn) per layer, on the
residual of every clip at the asked positions, with k-fold cross-validation, and reports the
held-out accuracy with a Wilson interval next to a **control task**: the same probe on the
clips' labels shuffled once (seeded), which no layer can carry. Accuracy above the control is
what a layer holds; the logit lens's information score, from the same forward pass, is what the
model's own head reads there.

- **Folds are grouped** by speaker (else by sentence) when the data set's samples name them
  (:class:`~audiolens.data.Sample` ``speaker`` / ``sentence``): otherwise a probe could learn a
  voice in one fold and meet it again in another, and held-out accuracy would be inflated. A
  data set without that metadata gets one :class:`~audiolens.errors.UngroupedFolds` warning.
- **One pass, streamed**: activations are read by a read-only intervention inside the logit
  lens's own forward pass, pooled to one vector per clip at once, so memory grows as
  (clips × d) per layer and never as (layers × tokens × d).
- **Encoder layers** (when the model has ``n_encoder_layers > 0``) are probed too: layer 0 is
  ``encoder.hook_embed`` and layer l the output of encoder block l, each averaged over the
  clip's valid frames.

Example:
    >>> import audiolens as al                                                  # doctest: +SKIP
    >>> df = al.probe_layers(al.models.demo(), dataset, positions="last")       # doctest: +SKIP
    >>> df[["stack", "layer", "accuracy", "control_accuracy", "info_score"]]    # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..backends import execute
from ..batch import AudioBatch
from ..errors import OneClass, PositionError, TooFewClips, UngroupedFolds, WeakEvidence, warn_user
from ..interventions import HookFn, Intervention, collect_hooks
from ..lenses.logit import LogitLens
from ..lenses.result import LensResult
from ..metrics import info_score_interval, wilson_interval

if TYPE_CHECKING:
    import pandas as pd

    from ..backends.model import HookedModel
    from ..data.dataset import AttributeDataset
    from ..hooked import HookedAudioLM

GroupBy = Literal["auto", "speaker", "sentence"] | None
Site = tuple[str, int, str]  # (stack, layer, hook name)

TABLE_COLUMNS = (
    "stack", "layer", "accuracy", "ci_low", "ci_high", "control_accuracy", "control_ci_low",
    "control_ci_high", "selectivity", "majority", "chance", "n", "folds", "grouped_by", "positions",
    "info_score", "info_ci_low", "info_ci_high", "hook",
)
PREDICTION_COLUMNS = (
    "stack", "layer", "id", "fold", "target", "prediction", "control_target", "control_prediction",
)


# --------------------------------------------------------------------------- where to read


def probe_sites(model: HookedAudioLM) -> list[Site]:
    """Every layer a probe reads, encoder layers first: ``(stack, layer, hook name)``.

    Encoder layer 0 is ``encoder.hook_embed`` (the encoder's input after its front end) and
    layer l the output of encoder block l; decoder layers follow the paper (0 = embedding
    output, ℓ = output of block ℓ). A model without encoder layers has decoder sites only.

    Example:
        >>> probe_sites(model)[:2]  # doctest: +SKIP
        [('decoder', 0, 'blocks.0.hook_resid_pre'), ('decoder', 1, 'blocks.0.hook_resid_post')]
    """
    # Without encoder layers (the demo model) encoder.hook_embed is refused: nothing separates
    # the front end from the output, so no encoder site is probed.
    n_encoder = model.n_encoder_layers
    sites: list[Site] = []
    if n_encoder > 0:
        sites.append(("encoder", 0, "encoder.hook_embed"))
        sites += [("encoder", i + 1, f"encoder.blocks.{i}.hook_resid_post") for i in range(n_encoder)]
    sites += [("decoder", layer, model.resid_name(layer)) for layer in range(model.n_layers + 1)]
    return sites


def check_positions(batch: AudioBatch, positions: str) -> None:
    """Raise :class:`PositionError` when ``positions`` is neither ``"last"``, ``"audio"`` nor a
    position or span name of ``batch``."""
    if not isinstance(positions, str):
        raise PositionError(f"probe positions must be a name, got {positions!r}")
    if positions in batch.positions or positions in batch.spans:
        return
    raise PositionError(
        f"probe positions {positions!r}: the batch has no such position or span; use 'last', "
        f"'audio', or one of {sorted({*batch.positions, *batch.spans} - {'padding'})}"
    )


class PooledActivations(Intervention):
    """Reads (never writes) the activation at each of ``sites``, pooled to one vector per clip,
    and keeps it on the CPU in float32: ``store[hook name]`` is a list of ``(batch, d)`` tensors,
    one per forward pass.

    Decoder hooks: ``positions`` a position name (``"last"``, ``"attribute"``) takes that token;
    a span name (``"audio"``, ...) takes the mean over the row's tokens of the span. Encoder
    hooks (``encoder.*``) take the mean over the row's valid frames (``batch.frame_mask``),
    whatever ``positions`` is: the encoder sees only the audio. It reads whole sequences: use it
    in :meth:`LogitLens.run <audiolens.lenses.base.LabelLens.run>` or a plain forward, not in
    a run that splits the sequence over a key/value cache.

    Example:
        >>> rec = PooledActivations(probe_sites(model), "last")        # doctest: +SKIP
        >>> al.LogitLens(task).run(model, batch, interventions=[rec])  # doctest: +SKIP
        >>> rec.store["blocks.7.hook_resid_post"][0].shape             # doctest: +SKIP
        torch.Size([8, 64])
    """

    def __init__(self, sites: Sequence[Site], positions: str = "last"):
        self.sites = list(sites)
        self.positions = positions
        self.store: dict[str, list[Tensor]] = {name: [] for _, _, name in self.sites}

    def writes(self, model: HookedModel) -> list[str]:
        return []

    def hooks(self, model: HookedModel, batch: AudioBatch) -> list[tuple[str, HookFn]]:
        check_positions(batch, self.positions)
        if self.positions in batch.positions:
            decoder = _token_reader(batch.position(self.positions))
        else:
            decoder = _mean_reader(batch.span(self.positions), f"span {self.positions!r}")
        hooks: list[tuple[str, HookFn]] = []
        for stack, _, name in self.sites:
            # An encoder activation has frames, not tokens: the mean over the clip's own frames.
            read = decoder if stack == "decoder" else _mean_reader(batch.frame_mask(name), name)
            hooks.append((name, self._keep(read)))
        return hooks

    def _keep(self, read: Reader) -> HookFn:
        def keep(act: Tensor, hook: Any) -> None:
            self.store[hook.name].append(read(act).detach().float().cpu())

        return keep

    def stacked(self) -> dict[str, np.ndarray]:
        """``(clips, d)`` per hook name, rows in the order the batches ran."""
        return {name: torch.cat(parts).numpy() for name, parts in self.store.items() if parts}


Reader = Callable[[Tensor], Tensor]


def _token_reader(index: Tensor) -> Reader:
    def read(act: Tensor) -> Tensor:
        return act[torch.arange(act.shape[0], device=act.device), index.to(act.device)]

    return read


def _mean_reader(mask: Tensor, what: str) -> Reader:
    counts = mask.sum(1)
    if bool((counts == 0).any()):
        rows = (counts == 0).nonzero().flatten().tolist()
        raise PositionError(f"{what} is empty in rows {rows}: nothing to average there")
    weights = mask.float() / counts[:, None].float()

    def read(act: Tensor) -> Tensor:
        if act.shape[1] != weights.shape[1]:
            raise PositionError(
                f"{what}: {weights.shape[1]} positions in the mask but {act.shape[1]} in the activation "
                "(probes read whole sequences, not a prefix-cached chunk)"
            )
        return torch.einsum("bs,bsd->bd", weights.to(act.device, act.dtype), act)

    return read


# --------------------------------------------------------------------------- folds and fitting


def sample_groups(dataset: AttributeDataset, group_by: GroupBy = "auto") -> tuple[np.ndarray | None, str | None]:
    """One group id per clip and what it is (``"speaker"``, ``"sentence"``), or ``(None,
    None)`` with one :class:`UngroupedFolds` warning when the samples do not say.

    ``"auto"`` prefers speakers (a voice is what would leak most between folds), then sentences.
    """
    if group_by not in ("auto", "speaker", "sentence", None):
        raise ValueError(f"group_by must be 'auto', 'speaker', 'sentence' or None, got {group_by!r}")
    if group_by is None:
        return None, None
    for field in (("speaker", "sentence") if group_by == "auto" else (group_by,)):
        values = [getattr(s, field, None) for s in dataset]
        if all(v is not None for v in values):
            return np.asarray(values, dtype=object), field
    warn_user(
        f"{dataset.name}: its samples name no {'speakers or sentences' if group_by == 'auto' else group_by + 's'}, "
        "so probe folds are not grouped and one speaker's clips may be on both sides of a split "
        "(held-out accuracy can be inflated); set Sample.speaker / Sample.sentence, or pass group_by=None "
        "to accept ungrouped folds",
        UngroupedFolds,
    )
    return None, None


def probe_folds(
    targets: np.ndarray, groups: np.ndarray | None = None, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """The cross-validation fold (0..k-1) of every clip: stratified by label, and with
    ``groups`` every group (speaker, sentence) in exactly one fold.

    Raises :class:`TooFewClips` (fewer clips or groups than two, fewer clips than folds) and
    :class:`OneClass`; with fewer groups than ``folds`` it uses one fold per group and warns
    :class:`~audiolens.errors.WeakEvidence`.

    Example:
        >>> groups = np.repeat(list("abcdef"), 2)
        >>> folds = probe_folds(np.array([0, 1] * 6), groups, folds=3)
        >>> all(len(set(folds[groups == g])) == 1 for g in "abcdef")  # a speaker in one fold
        True
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    targets = np.asarray(targets)
    n = len(targets)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if n < folds:
        raise TooFewClips(f"{n} clips for {folds} folds: give at least {folds} clips, or pass folds={max(2, n)}")
    if len(np.unique(targets)) < 2:
        raise OneClass(f"all {n} clips have the same label ({targets[0]}): a probe needs at least two classes")
    out = np.empty(n, dtype=np.int64)
    with warnings.catch_warnings():
        # sklearn warns when a class has fewer clips than folds; the interval shows the cost.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        if groups is None:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), targets)
        else:
            n_groups = len(set(groups.tolist()))
            if n_groups < 2:
                raise TooFewClips("every clip has the same speaker/sentence: grouped folds need at least two "
                                  "groups (pass group_by=None to fold by clip)")
            if n_groups < folds:
                warn_user(f"{n_groups} speaker/sentence groups for {folds} folds: using {n_groups} folds",
                          WeakEvidence)
                folds = n_groups
            codes = np.unique(groups.astype(str), return_inverse=True)[1]
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), targets, codes)
        for k, (_, test) in enumerate(splits):
            out[test] = k
    return out


def control_labels(targets: np.ndarray, n_labels: int, seed: int = 0) -> np.ndarray:
    """The control task's labels: the data set's labels shuffled, so that within every true class
    each label appears in its overall share (largest remainder rounding).

    A plain permutation agrees with the true labels by chance more or less often than the
    class shares predict (by about 1/sqrt(n)), and a probe that finds the real attribute then
    scores that leaked agreement on the control; shuffling within each class keeps the control
    independent of the attribute in the sample itself.

    Example:
        >>> y = np.repeat([0, 1], 10)
        >>> c = control_labels(y, 2)
        >>> int((c == 0).sum()), int((c[y == 0] == 0).sum())
        (10, 5)
    """
    targets = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    share = np.bincount(targets, minlength=n_labels) / len(targets)
    control = np.empty_like(targets)
    for c in range(n_labels):
        idx = np.flatnonzero(targets == c)
        quota = share * len(idx)
        take = np.floor(quota).astype(int)
        for k in rng.permutation(np.flatnonzero(quota - take > 0))[: len(idx) - take.sum()]:
            take[k] += 1
        control[idx] = rng.permutation(np.repeat(np.arange(n_labels), take))
    return control


def cross_validated(
    features: np.ndarray, targets: np.ndarray, folds: np.ndarray, *, C: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Out-of-fold predictions of a standardized logistic regression with balanced class
    weights (one fit per fold).

    Clips in fold -1 only ever train (their prediction is -1): a held-out design is fold -1
    for the training clips and fold 0 for the scored ones. A training part holding a single
    class predicts that class (nothing to fit).

    Example:
        >>> x = np.r_[np.zeros((6, 2)), np.ones((6, 2))]
        >>> cross_validated(x, np.repeat([0, 1], 6), np.tile([0, 1, 2], 4)).tolist()
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.full(len(targets), -1, dtype=np.int64)
    for k in np.unique(folds[folds >= 0]):
        test, train = folds == k, folds != k
        seen = np.unique(targets[train])
        if len(seen) == 1:
            pred[test] = seen[0]
            continue
        # Balanced class weights: a fold whose training part is unbalanced (grouped folds often
        # are) would otherwise lean to the majority class where a layer carries nothing.
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, class_weight="balanced",
                                                                 random_state=seed))
        clf.fit(features[train], targets[train])
        pred[test] = clf.predict(features[test])
    return pred


def fit_probes(
    features: Mapping[tuple[str, int], np.ndarray],
    targets: np.ndarray,
    n_labels: int,
    *,
    groups: np.ndarray | None = None,
    grouped_by: str | None = None,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    ids: Sequence[str] | None = None,
    train: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe every ``(stack, layer) -> (clips, d)`` array; returns ``(table, predictions)``.

    By default k-fold cross-validation over all clips. With ``train`` (a bool mask), one probe
    is fitted on those clips and scored on the others (a held-out split; no folds).

    The control task's labels are :func:`control_labels` (seeded; drawn for the training and
    the scored clips apart when they are apart) and is fitted on the same folds. ``table`` has one row per layer
    (see :data:`TABLE_COLUMNS`; the lens columns are NaN here), ``predictions`` one row per
    layer and scored clip with its fold.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 20)
        >>> x = rng.normal(size=(40, 3)) + 4 * y[:, None]
        >>> table, _ = fit_probes({("decoder", 0): x}, y, 2)
        >>> float(table.accuracy[0]), bool(table.control_accuracy[0] < 0.8)
        (1.0, True)
    """
    import pandas as pd

    targets = np.asarray(targets, dtype=np.int64)
    ids = [str(i) for i in range(len(targets))] if ids is None else list(ids)
    control = targets.copy()
    if train is None:
        fold = probe_folds(targets, groups, folds, seed)
        control = control_labels(targets, n_labels, seed)
        scored = np.ones(len(targets), dtype=bool)
        n_folds, design = int(fold.max()) + 1, grouped_by or "none"
    else:
        train = np.asarray(train, dtype=bool)
        scored = ~train
        if not scored.any():
            raise TooFewClips("every clip is a training clip: nothing is held out to score the probe on")
        probe_folds(targets[train], None, 2, seed)  # the training part's own checks (clips, classes)
        fold = np.where(train, -1, 0)
        for part in (train, scored):
            control[part] = control_labels(targets[part], n_labels, seed)
        n_folds, design = 1, "held-out"
    y, y_c = targets[scored], control[scored]
    n = int(scored.sum())
    majority = np.bincount(y, minlength=n_labels).max() / n
    rows, preds = [], []
    for (stack, layer), x in features.items():
        if x.shape[0] != len(targets):
            raise ValueError(f"{stack} layer {layer}: {x.shape[0]} rows of features for {len(targets)} clips")
        pred = cross_validated(x, targets, fold, C=C, seed=seed)[scored]
        pred_c = cross_validated(x, control, fold, C=C, seed=seed)[scored]
        k, k_c = int((pred == y).sum()), int((pred_c == y_c).sum())
        lo, hi = wilson_interval(k, n)
        lo_c, hi_c = wilson_interval(k_c, n)
        rows.append({
            "stack": stack, "layer": layer, "accuracy": k / n, "ci_low": lo, "ci_high": hi,
            "control_accuracy": k_c / n, "control_ci_low": lo_c, "control_ci_high": hi_c,
            "selectivity": (k - k_c) / n, "majority": majority, "chance": 1 / n_labels, "n": n,
            "folds": n_folds, "grouped_by": design,
        })
        preds.append(pd.DataFrame({
            "stack": stack, "layer": layer, "id": [i for i, s in zip(ids, scored) if s], "fold": fold[scored],
            "target": y, "prediction": pred, "control_target": y_c, "control_prediction": pred_c,
        }))
    table = pd.DataFrame(rows)
    for col in ("positions", "hook"):
        table[col] = ""
    for col in ("info_score", "info_ci_low", "info_ci_high"):
        table[col] = np.nan
    return table[list(TABLE_COLUMNS)], pd.concat(preds, ignore_index=True)[list(PREDICTION_COLUMNS)]


# --------------------------------------------------------------------------- the whole run


@dataclass
class ProbeResult:
    """Probes per layer, their per-fold predictions, and the logit lens of the same pass.

    Attributes:
        table: one row per (stack, layer): accuracy with Wilson interval, control accuracy with
            its interval, ``selectivity`` (accuracy − control), majority-class rate, chance,
            ``n``, folds, grouping, and at decoder rows the lens's information score at the last
            token (``info_score``, with its Wilson interval): present versus read by the head.
        predictions: one row per layer and clip: fold, target, prediction, and the control's.
        lens: the :class:`LensResult` of the same forward passes (None with ``lens=False``).
        labels: the task's labels.

    Example:
        >>> res = run_probes(model, dataset)          # doctest: +SKIP
        >>> res.table.query("stack == 'decoder'")     # doctest: +SKIP
        >>> res.lens.accuracy()                       # doctest: +SKIP
    """

    table: pd.DataFrame
    predictions: pd.DataFrame
    lens: LensResult | None
    labels: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        """The per-layer table (a copy)."""
        return self.table.copy()

    def plot(self, encoder_lens: Any = None, title: str | None = None, ax: Any = None) -> Any:
        """The present / read figure (see :func:`audiolens.analysis.plots.plot_probes`)."""
        from .plots import plot_probes

        return plot_probes(self, encoder_lens=encoder_lens, title=title, ax=ax)


@torch.no_grad()
def run_probes(
    model: HookedAudioLM,
    dataset: AttributeDataset,
    positions: str = "last",
    *,
    held_out: AttributeDataset | None = None,
    prompt: str = "P3",
    folds: int = 5,
    group_by: GroupBy = "auto",
    seed: int = 0,
    C: float = 1.0,
    batch_size: int = 8,
    lens: bool = True,
    truncate: bool = False,
    interventions: Sequence[Intervention] = (),
    progress: bool = True,
) -> ProbeResult:
    """Probe every layer of ``model`` for ``dataset``'s attribute, with the logit lens read in
    the same forward passes.

    Args:
        positions: ``"last"`` (the last prompt token), ``"audio"`` (mean over the clip's own
            audio tokens), or any position or span name of the batch. Encoder layers always take
            the mean over the clip's valid frames (for ``"last"`` too: the encoder has no text).
        held_out: score on these clips a probe fitted on all of ``dataset`` (e.g. train on the
            voices a model was trained on, score on voices it never heard, as the model itself
            is scored); the lens is then read on ``held_out``. Without it: k-fold
            cross-validation over ``dataset``.
        prompt: the task's prompt format the clips are rendered with (``"P1"``..``"P3"``).
        folds: cross-validation folds (fewer speaker/sentence groups than folds: one per group).
        group_by: ``"auto"`` (speaker, else sentence, else ungrouped with a warning),
            ``"speaker"``, ``"sentence"`` or None (fold by clip, no warning).
        seed: folds, the control's shuffle and the solver.
        C: inverse L2 strength of the logistic regression.
        lens: also run the logit lens (free: the same pass) and fill ``info_score``.
        truncate: cut clips longer than the model's audio window (else they raise).
        interventions: applied in every pass (e.g. ``AudioMask``); probes read the edited run.

    Raises:
        TooFewClips, OneClass, PositionError: see :mod:`audiolens.errors`.

    Example:
        >>> res = run_probes(al.models.demo(), dataset, "last", folds=4)  # doctest: +SKIP
        >>> res.table[["stack", "layer", "accuracy", "control_accuracy"]]  # doctest: +SKIP
    """
    task = dataset.task
    if held_out is not None and tuple(held_out.task.labels) != tuple(task.labels):
        raise ValueError(f"held_out has labels {list(held_out.task.labels)}, the data set {list(task.labels)}")
    n_min = 2 if held_out is not None else folds
    if len(dataset) < n_min:
        raise TooFewClips(f"{dataset.name}: {len(dataset)} clips for {n_min} folds; give at least {n_min} "
                          f"clips or pass folds={max(2, len(dataset))}")
    if len(np.unique(dataset.targets)) < 2:
        raise OneClass(f"{dataset.name}: every clip is labelled {dataset[0].label!r}; a probe needs two classes")
    groups, grouped_by = (None, None) if held_out is not None else sample_groups(dataset, group_by)
    sites = probe_sites(model)
    def collect(ds: AttributeDataset, with_lens: bool) -> tuple[dict[str, np.ndarray], LensResult | None]:
        return _collect(model, ds, sites, positions=positions, prompt=prompt, batch_size=batch_size,
                        truncate=truncate, interventions=interventions, progress=progress, lens=with_lens)

    acts, lens_result = collect(dataset, lens and held_out is None)
    parts = [dataset]
    if held_out is not None:
        test_acts, lens_result = collect(held_out, lens)
        acts = {name: np.concatenate([acts[name], test_acts[name]]) for name in acts}
        parts.append(held_out)
    features = {(stack, layer): acts[name] for stack, layer, name in sites}
    train = None if held_out is None else np.arange(len(dataset) + len(held_out)) < len(dataset)
    table, predictions = fit_probes(
        features, np.concatenate([p.targets for p in parts]), len(task.labels), groups=groups,
        grouped_by=grouped_by, folds=folds, seed=seed, C=C, ids=[s.id for p in parts for s in p], train=train,
    )
    table["positions"] = positions
    table["hook"] = [name for _, _, name in sites]
    if lens_result is not None and lens_result.targets is not None:
        info = lens_result.info_scores("last")
        lo, hi = info_score_interval(lens_result.logits_at("last"), lens_result.targets)
        dec = (table["stack"] == "decoder").to_numpy()
        layers = table["layer"].to_numpy()[dec]
        table.loc[dec, "info_score"] = info[layers]
        table.loc[dec, "info_ci_low"] = np.asarray(lo)[layers]
        table.loc[dec, "info_ci_high"] = np.asarray(hi)[layers]
    return ProbeResult(table=table, predictions=predictions, lens=lens_result, labels=tuple(task.labels))


def _collect(
    model: HookedAudioLM, dataset: AttributeDataset, sites: list[Site], *, positions: str, prompt: str,
    batch_size: int, truncate: bool, interventions: Sequence[Intervention], progress: bool, lens: bool,
) -> tuple[dict[str, np.ndarray], LensResult | None]:
    """One forward pass per batch: pooled activations at every site (``(clips, d)`` each) and,
    with ``lens``, the logit lens at the last token from the same pass."""
    from tqdm.auto import tqdm

    task = dataset.task
    reader = PooledActivations(sites, positions)
    logit_lens = LogitLens(task, positions=("last",)) if lens else None
    results: list[LensResult] = []
    rate, max_seconds = model.sampling_rate, model.max_audio_seconds
    for start in tqdm(range(0, len(dataset), batch_size), desc=f"probes {dataset.name}", disable=not progress):
        samples = dataset.samples[start:start + batch_size]
        batch = model.prepare(
            [s.load(rate, max_seconds=max_seconds, truncate=truncate) for s in samples], rate,
            task.prompt(prompt), [s.label for s in samples], ids=[s.id for s in samples], truncate=truncate,
        )
        if logit_lens is not None:
            results.append(logit_lens.run(model, batch, interventions=[*interventions, reader]))
        else:
            execute(model, batch.inputs, collect_hooks([*interventions, reader], model, batch))
    acts = reader.stacked()
    bad = [name for name, x in acts.items() if x.shape[0] != len(dataset)]
    if bad or len(acts) != len(sites):
        raise RuntimeError(f"probe activations were not read once per clip at {bad or 'some hooks'}")
    return acts, (LensResult.concat(results) if results else None)


def probe_layers(model: HookedAudioLM, dataset: AttributeDataset, positions: str = "last", **kwargs: Any) -> pd.DataFrame:
    """:func:`run_probes`'s per-layer table: columns ``stack`` (``"encoder"`` | ``"decoder"``),
    ``layer``, ``accuracy``, ``ci_low``, ``ci_high``, ``control_accuracy`` (with its interval),
    ``selectivity``, ``majority``, ``chance``, ``n``, ``folds``, ``grouped_by``, ``positions``,
    and the logit lens's ``info_score`` at decoder layers.

    Example:
        >>> df = al.probe_layers(model, dataset, positions="audio")  # doctest: +SKIP
        >>> df.loc[df.accuracy.idxmax(), ["stack", "layer"]]        # doctest: +SKIP
    """
    return run_probes(model, dataset, positions, **kwargs).to_frame()


__all__ = [
    "PREDICTION_COLUMNS", "TABLE_COLUMNS", "PooledActivations", "ProbeResult", "check_positions",
    "control_labels", "cross_validated", "fit_probes", "probe_folds", "probe_layers", "probe_sites", "run_probes",
    "sample_groups",
]
