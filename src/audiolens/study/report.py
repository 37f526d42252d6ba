"""A study's report from its records alone: the summary, Tables II–III, Figs. 2–5, the
knockout table and tidy frames, written under the study's output folder.

:class:`Report` reads a :class:`~audiolens.study.records.RecordStore` and needs no model, so a
finished run re-analyses anywhere; :class:`~audiolens.study.runner.Study` hands its reporting
methods to one. The computations live in :mod:`~audiolens.study.tables` and
:mod:`~audiolens.study.figures`; this module gathers the records for them and writes the
results (atomically: runs of other models into the same folder rewrite the same tables).

Example:
    >>> report = Report(RecordStore("results"), "results")  # doctest: +SKIP
    >>> report.table2()                                     # doctest: +SKIP
    >>> report.figure(2)                                    # doctest: +SKIP
    PosixPath('results/figures/fig2.png')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.knockout import parse_knockout, target_probability
from ..files import replacing, write_atomic
from .records import RecordStore

if TYPE_CHECKING:
    import pandas as pd

    from ..lenses.result import LensResult


class Report:
    """Tables, figures and frames of the records in ``store``, written under ``out``.

    Args:
        store: the study's records.
        out: output folder (``tables/`` and ``figures/`` go there).
        alpha: α of Eq. 3 for the critical layers.
    """

    def __init__(self, store: RecordStore, out: str | Path, alpha: float = 0.2):
        self.store = store
        self.out = Path(out)
        self.alpha = alpha

    def summary(self) -> pd.DataFrame:
        """Critical layer and accuracy per (model, attribute, prompt) of the plain run."""
        from .tables import summarize

        return summarize(
            (
                (k.model, k.attribute, k.prompt, self.store.result(k.model, k.attribute, k.prompt))
                for k in self.store.record_keys()
                if k.intervention == "none"
            ),
            alpha=self.alpha,
        )

    def write_table(self, df: pd.DataFrame, name: str, index: bool) -> Path:
        """``df`` as ``out/tables/{name}.csv`` and ``.md``; the folder."""
        from .tables import to_markdown

        folder = self.out / "tables"
        write_atomic(folder / f"{name}.csv", df.to_csv(index=index))
        write_atomic(folder / f"{name}.md", to_markdown(df, index=index, floatfmt=".4g") + "\n")
        return folder

    def table2(self) -> pd.DataFrame:
        """Table II (see :func:`audiolens.study.tables.table2`), also written to
        ``out/tables/table2.{csv,md}``."""
        from .tables import table2

        df = table2(self.summary())
        self.write_table(df, "table2", index=True)
        return df

    def table3(self, exclude: Sequence[str] = ("gender",)) -> pd.DataFrame:
        """Table III (see :func:`audiolens.study.tables.table3`), also written to
        ``out/tables/table3.{csv,md}``."""
        from .tables import table3

        df = table3(self.summary(), exclude=exclude)
        self.write_table(df, "table3", index=False)
        return df

    def figure(self, n: int) -> Path:
        """Draw Fig. ``n`` (2–5) from the records into ``out/figures/fig{n}.png``; its path."""
        from . import figures

        path = self.out / "figures" / f"fig{n}.png"
        with replacing(path) as tmp:
            figures.draw(n, self.store, tmp)
        return path

    def knockout_table(self) -> pd.DataFrame:
        """Attention knockout from the records: per model, attribute, prompt, key span and
        window (``all`` = every block), the mean probability of the target among the labels at
        the answer token, plain and with the window blocked, and their difference. A large drop
        for ``audio`` and none for ``question`` says the answer reads the audio, not the text.
        Also written to ``out/tables/knockout.{csv,md}`` when there are knockout records."""
        import pandas as pd

        rows = []
        for key in self.store.record_keys():
            parsed = parse_knockout(key.intervention)
            if parsed is None:
                continue
            span, window = parsed
            knocked = self.store.result(key.model, key.attribute, key.prompt, key.intervention)
            plain = self.store.result(key.model, key.attribute, key.prompt, "none")
            # Clip by clip over the clips both runs hold (an interrupted run may lack some).
            knocked, plain = _common(knocked, plain)
            p_plain, p_knocked = target_probability(plain).numpy(), target_probability(knocked).numpy()
            rows.append({"model": key.model, "attribute": key.attribute, "prompt": key.prompt, "keys": span,
                         "window": window, "n": len(knocked), "p_target": float(p_plain.mean()),
                         "p_target_knocked": float(p_knocked.mean()),
                         "delta": float((p_knocked - p_plain).mean())})
        df = pd.DataFrame(rows)
        if not df.empty:
            self.write_table(df, "knockout", index=False)
        return df

    def to_frame(self) -> pd.DataFrame:
        """Every record as one tidy table: ``model, attribute, prompt, intervention``, then one
        row per sample × position × layer × label as in :meth:`LensResult.to_frame`. Save it
        with :func:`audiolens.files.write_parquet` (or ``df.to_parquet``).

        With stored probes, their per-fold predictions follow, one row per clip and layer, as
        interventions ``"probe"`` and ``"probe_control"`` with ``stack`` and ``fold`` columns
        (see :func:`~audiolens.study.probing.probe_predictions`); with a stored encoder lens,
        its rows as intervention ``"encoder_lens"`` (``stack`` ``"encoder"``, ``layer`` the
        encoder layer the encoder stopped after; see
        :func:`~audiolens.study.encoder_lens.encoder_lens_rows`)."""
        import pandas as pd

        from ..lenses.frames import lens_frame
        from .encoder_lens import encoder_lens_rows
        from .probing import probe_predictions
        from .tables import over_records

        df = over_records(self.store, lens_frame)
        extra = [p for p in (probe_predictions(self.store), encoder_lens_rows(self.store)) if not p.empty]
        return pd.concat([df, *extra], ignore_index=True) if extra else df

    def probe_table(self) -> pd.DataFrame:
        """Every stored probe table (per model, attribute and layer: accuracy, control, lens
        information score; see :func:`audiolens.analysis.probes.probe_layers`), also written
        to ``out/tables/probes.{csv,md}`` when there are any."""
        from .probing import probe_tables

        df = probe_tables(self.store)
        if not df.empty:
            cols = ["model", "attribute", "stack", "layer", "accuracy", "ci_low", "ci_high", "control_accuracy",
                    "info_score", "n", "folds", "grouped_by", "positions"]
            self.write_table(df[cols], "probes", index=False)
        return df

    def encoder_lens_table(self) -> pd.DataFrame:
        """Every stored encoder lens (per model, attribute and encoder layer: the LLM's accuracy
        at the last token with the encoder stopped there, its Wilson interval, ``n``; see
        :func:`~audiolens.study.encoder_lens.encoder_lens_table`), also written to
        ``out/tables/encoder_lens.{csv,md}`` when there are any."""
        from .encoder_lens import encoder_lens_table

        df = encoder_lens_table(self.store)
        if not df.empty:
            self.write_table(df, "encoder_lens", index=False)
        return df

    def probe_figure(self, attribute: str, model: str | None = None, encoder_lens: Any = None) -> Path:
        """Draw the probe figure of ``attribute`` (present vs read per layer, see
        :func:`audiolens.analysis.plots.plot_probes`) into
        ``out/figures/probes_{attribute}.png``; its path. ``encoder_lens`` (default: the
        stored one of the same model and attribute, if any) adds the encoder lens's line."""
        from ..analysis.plots import plot_probes
        from .encoder_lens import encoder_lens_result
        from .probing import probe_tables

        df = probe_tables(self.store, [model] if model else None)
        df = df[df["attribute"] == attribute] if not df.empty else df
        if df.empty:
            raise KeyError(f"no stored probes of {attribute!r} under {self.store.root}")
        first = df["model"].iloc[0]
        table = df[df["model"] == first].reset_index(drop=True)
        if encoder_lens is None and any(a == attribute for a, _ in self.store.encoder_lens_runs(first)):
            stored = encoder_lens_result(self.store, first, attribute)
            # Probes stored without encoder rows (an older run) leave no x positions for it.
            if stored.n_encoder_layers + 1 == int((table["stack"] == "encoder").sum()):
                encoder_lens = stored
        path = self.out / "figures" / f"probes_{attribute}.png"
        with replacing(path) as tmp:
            fig = plot_probes(table, encoder_lens=encoder_lens,
                              title=f"{first}, {attribute}: present (probe) vs read (logit lens)")
            fig.savefig(tmp, format="png")
        return path

    def info_frame(self) -> pd.DataFrame:
        """Per record, position and layer: ``n``, ``n_correct`` and ``info_score`` (Eq. 2)."""
        from ..lenses.frames import info_frame
        from .tables import over_records

        return over_records(self.store, info_frame)


def _common(*results: LensResult) -> list[LensResult]:
    """``results`` cut to the ids all of them hold, in the first one's order."""
    shared = set(results[0].ids).intersection(*(r.ids for r in results[1:]))
    ids = [i for i in results[0].ids if i in shared]
    out = []
    for res in results:
        index = {i: k for k, i in enumerate(res.ids)}
        out.append(res.subset(np.array([index[i] for i in ids], dtype=np.int64)))
    return out


__all__ = ["Report"]
