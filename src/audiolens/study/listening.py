"""A study's listening phase on disk: audio heads and grounding per attribute, resumable clip by
clip, in per-clip rows like the enrichment sweep's.

For each attribute, ``records/<model>/<attribute>/listening.<prompt>.jsonl`` holds, per clip,
one ``"heads"`` row per (layer, head) (``audio_share``, ``effect``: see
:func:`~audiolens.analysis.heads.find_audio_heads`) and one ``"grounding"`` row per condition,
the real clip included (``prediction``, ``correct`` per layer: see
:func:`~audiolens.analysis.grounding.grounding`). A clip's rows are appended in one write; a
clip with fewer rows than it should have (a killed run) is dropped and run again.

Example:
    >>> ListeningConfig.of(True).conditions
    ('silence', 'noise', 'swap', 'reversed')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.grounding import (
    CONDITIONS,
    GroundingResult,
    counterfactual_waves,
    grounding_of_clips,
)
from ..analysis.heads import AudioHeads, heads_of_batch
from ..errors import CounterfactualError
from ..interventions import head_count
from . import records as rec

if TYPE_CHECKING:
    from ..data import AttributeDataset
    from ..hooked import HookedAudioLM


@dataclass
class ListeningConfig:
    """What the listening phase runs: ``conditions`` for grounding (a data set of one label
    leaves out ``"swap"``), noise at ``snr_db``, head ablation ``mode``, under ``prompt``."""

    conditions: Sequence[str] = ("silence", "noise", "swap", "reversed")
    snr_db: float = 0.0
    mode: str = "zero"
    prompt: str = "P3"
    top_k: int = 10

    def __post_init__(self) -> None:
        self.conditions = tuple(self.conditions)
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad or not self.conditions:
            raise CounterfactualError(f"listening: unknown conditions {bad or self.conditions}; use some of "
                                      f"{list(CONDITIONS)}")

    @classmethod
    def of(cls, value: bool | ListeningConfig | Mapping[str, Any] | None) -> ListeningConfig | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, ListeningConfig):
            return value
        return cls(**dict(value))


def listening_path(store: rec.RecordStore, model: str, attribute: str, prompt: str) -> Path:
    return store.root / rec.safe_name(model) / attribute / f"listening.{prompt}.jsonl"


class ListeningPhase:
    """Runs and reads the listening rows of every attribute of a study."""

    def __init__(self, config: ListeningConfig, store: rec.RecordStore, model_name: str, seed: int = 0,
                 say: Callable[[str], None] | None = None) -> None:
        self.config, self.store, self.model_name, self.seed = config, store, model_name, seed
        self.say = say or (lambda message: None)

    def conditions(self, ds: AttributeDataset) -> list[str]:
        """The configured conditions this data set can express (a swap needs two labels)."""
        if len({s.label for s in ds.samples}) < 2 and "swap" in self.config.conditions:
            self.say(f"listening: {ds.task.name} has one label, so no swap is possible; left out")
            return [c for c in self.config.conditions if c != "swap"]
        return list(self.config.conditions)

    def run(self, model: HookedAudioLM, datasets: Sequence[AttributeDataset], batch_size: int = 8,
            truncate: bool = False, progress: bool = True) -> None:
        """Every clip's missing rows, batch by batch (appended as they come)."""
        from tqdm.auto import tqdm

        cfg = self.config
        per_clip_heads = sum(head_count(model, layer) for layer in range(1, model.n_layers + 1))
        for ds in datasets:
            conditions = self.conditions(ds)
            path = listening_path(self.store, self.model_name, ds.task.name, cfg.prompt)
            expected = per_clip_heads + len(conditions) + 1
            done = self._complete(path, expected)
            todo = [s for s in ds.samples if s.id not in done]
            if not todo:
                continue
            rate = model.sampling_rate
            # Counterfactuals are drawn over the whole data set, so a resumed run draws the same.
            clips = [s.load(rate, max_seconds=model.max_audio_seconds, truncate=truncate) for s in ds.samples]
            labels = [s.label for s in ds.samples]
            waves = counterfactual_waves(clips, labels, conditions, cfg.snr_db, self.seed)
            where = {s.id: k for k, s in enumerate(ds.samples)}
            for start in tqdm(range(0, len(todo), batch_size), desc=f"listening {ds.task.name}",
                              disable=not progress):
                chunk = [where[s.id] for s in todo[start:start + batch_size]]
                ids = [ds.samples[k].id for k in chunk]
                g = grounding_of_clips(model, ds.task, [clips[k] for k in chunk],
                                       {c: [w[k] for k in chunk] for c, w in waves.items()}, conditions,
                                       [labels[k] for k in chunk], ids, cfg.prompt)
                batch = model.prepare([clips[k] for k in chunk], rate, ds.task.prompt(cfg.prompt),
                                      [labels[k] for k in chunk], ids=ids)
                heads = heads_of_batch(model, batch, ds.task, cfg.mode)
                rows_of = {i: [] for i in ids}
                for r in heads.to_rows():
                    rows_of[r["id"]].append({"kind": "heads", **r})
                for r in g.to_rows():
                    rows_of[r["id"]].append({"kind": "grounding", **r})
                rec.append_records(path, [r for i in ids for r in rows_of[i]])

    @staticmethod
    def _complete(path: Path, expected: int) -> set[str]:
        """Ids of the clips with all their rows; rows of incomplete clips are dropped."""
        rec.repair(path)
        rows = rec.read_records(path)
        counts = Counter(str(r["id"]) for r in rows)
        done = {i for i, n in counts.items() if n == expected}
        if len(done) < len(counts):
            rec.write_records(path, [r for r in rows if str(r["id"]) in done])
        return done

    def read(self, attribute: str, labels: Sequence[str]) -> tuple[AudioHeads, GroundingResult]:
        """The attribute's audio heads and grounding from its rows."""
        path = listening_path(self.store, self.model_name, attribute, self.config.prompt)
        rows = rec.read_records(path)
        if not rows:
            raise rec.RecordError(f"no listening rows at {path}; run the study with listening=True")
        heads = AudioHeads.from_rows([r for r in rows if r["kind"] == "heads"], self.config.mode, self.config.top_k)
        g = GroundingResult.from_rows([r for r in rows if r["kind"] == "grounding"], labels)
        return heads, g
