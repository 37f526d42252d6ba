"""Causal and fine-grained analyses: which layers, components and seconds of audio carry an
attribute, and whether the model uses what the lens sees.

- :func:`attention_to_spans`: per layer and head, the share of attention on each named span.
- :func:`attention_knockout`: block the answer's attention to a span over sliding layer windows.
- :func:`direct_logit_attribution`: the label-logit gap split into embedding, attention and MLP
  (and head) contributions through the frozen final norm.
- :class:`TokenLens`: the top-k tokens each layer's residual decodes to, at every position.
- :func:`patch`: activation patching from a clean into a corrupted run, per layer and position
  group (audio windows in seconds, text spans), as normalised recovery.

Modules: :mod:`~audiolens.analysis.knockout` (also the study's knockout windows, defined once
here), :mod:`~audiolens.analysis.attribution`, :mod:`~audiolens.analysis.patching`,
:mod:`~audiolens.analysis.common` (label ids, targets, the label-logit gap) and
:mod:`~audiolens.analysis.plots` (matplotlib, imported only when a plot is asked). Analyses run
lenses and interventions; nothing below them imports an analysis.
"""

from ..lenses.token import TokenLens, TokenLensResult
from .attention import SpanAttention, attention_to_spans
from .attribution import DLAResult, direct_logit_attribution
from .knockout import KnockoutResult, attention_knockout
from .patching import PatchError, PatchResult, corrupt_clips, patch, patched_label_logits

__all__ = [
    "DLAResult", "KnockoutResult", "SpanAttention", "attention_to_spans", "PatchError", "PatchResult", "TokenLens", "TokenLensResult",
    "attention_knockout", "corrupt_clips", "direct_logit_attribution", "patch", "patched_label_logits",
]
