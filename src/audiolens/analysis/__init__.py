"""Causal and fine-grained analyses: which layers, components and seconds of audio carry an
attribute, and whether the model uses what the lens sees.

- :func:`attention_knockout`: block the answer's attention to a span over sliding layer windows.
- :func:`direct_logit_attribution`: the label-logit gap split into embedding, attention and MLP
  (and head) contributions through the frozen final norm.
- :class:`TokenLens`: the top-k tokens each layer's residual decodes to, at every position.
- :func:`probe_layers` / :func:`run_probes`: a cross-validated linear probe per encoder and
  decoder layer, with a shuffled-label control, next to the logit lens of the same pass.
- :func:`patch`: activation patching from a clean into a corrupted run, per layer and position
  group (audio windows in seconds, text spans), as normalised recovery.

Modules: :mod:`~audiolens.analysis.knockout` (also the study's knockout windows, defined once
here), :mod:`~audiolens.analysis.attribution`, :mod:`~audiolens.analysis.patching`,
:mod:`~audiolens.analysis.common` (label ids, targets, the label-logit gap) and
:mod:`~audiolens.analysis.plots` (matplotlib, imported only when a plot is asked). Analyses run
lenses and interventions; nothing below them imports an analysis.
"""

from ..lenses.token import TokenLens, TokenLensResult
from .attribution import DLAResult, direct_logit_attribution
from .knockout import KnockoutResult, attention_knockout
from .patching import PatchError, PatchResult, corrupt_clips, patch, patched_label_logits
from .probes import ProbeResult, probe_layers, run_probes

__all__ = [
    "DLAResult", "KnockoutResult", "PatchError", "PatchResult", "ProbeResult", "TokenLens", "TokenLensResult",
    "attention_knockout", "corrupt_clips", "direct_logit_attribution", "patch", "patched_label_logits",
    "probe_layers", "run_probes",
]
