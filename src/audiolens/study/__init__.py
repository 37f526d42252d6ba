"""The paper's protocol over data sets, resumable and data-parallel.

- :mod:`~audiolens.study.runner`: :class:`Study`, which runs the lens passes per model,
  attribute, prompt and intervention and writes per-sample records as it goes;
- :mod:`~audiolens.study.sweep`: Eq. 5's enrichment (choice of ℓ̄ on probe clips, the λ sweep);
- :mod:`~audiolens.study.enrichment`: the study's enrichment phase on disk (probe/test split,
  the sweep's setup file and rows, resumable);
- :mod:`~audiolens.study.probing` and :mod:`~audiolens.study.encoder_lens`: the whole-model
  phases (layer-wise probes, the encoder lens) per attribute on disk;
- :mod:`~audiolens.study.records`: the record files, their lock and their integrity checks;
- :mod:`~audiolens.study.report`: :class:`~audiolens.study.report.Report`, the summary, tables,
  figures and frames of a record store;
- :mod:`~audiolens.study.tables` and :mod:`~audiolens.study.figures`: Tables II–III and
  Figs. 2–5 from the records;
- :mod:`~audiolens.study.html_report`: ``report.html``, all of it and the wrong answers clip by
  clip in one self-contained page;
- :mod:`~audiolens.study.distributed`: ``torchrun`` ranks;
- :mod:`~audiolens.study.reproduce`: the whole protocol in one call (``audiolens reproduce``).

Example:
    >>> study = al.Study(model, datasets, out="results/")  # doctest: +SKIP
    >>> study.run(); study.table2()                        # doctest: +SKIP
"""

from .records import RecordStore
from .runner import Study
from .sweep import SweepResult, enrich_sweep, select_enrich_layer, split

__all__ = ["RecordStore", "Study", "SweepResult", "enrich_sweep", "select_enrich_layer", "split"]
