"""Causal and fine-grained analyses: which layers, components and seconds of audio carry an
attribute, and whether the model uses what the lens sees.

- :func:`attention_to_spans`: per layer and head, the share of attention on each named span.
- :func:`find_audio_heads`: heads ranked by attention to the audio and by the effect of
  ablating them; :func:`steer_heads` scales the top ones.
- :func:`grounding`: each layer's information score with the real clip minus with counterfactual
  audio (silence, noise, another label's clip, reversed, none), and the listening rate.
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
from .attention import SpanAttention, attention_to_spans
from .attribution import DLAResult, direct_logit_attribution
from .grounding import GroundingResult, grounding
from .heads import AudioHeads, HeadSweep, find_audio_heads, steer_heads
from .knockout import KnockoutResult, attention_knockout
from .patching import PatchError, PatchResult, corrupt_clips, patch, patched_label_logits
from .probes import ProbeResult, probe_layers, run_probes

__all__ = [
    "AudioHeads",
    "DLAResult",
    "GroundingResult",
    "HeadSweep",
    "KnockoutResult",
    "PatchError",
    "PatchResult",
    "ProbeResult",
    "SpanAttention",
    "TokenLens",
    "TokenLensResult",
    "attention_knockout",
    "attention_to_spans",
    "corrupt_clips",
    "direct_logit_attribution",
    "find_audio_heads",
    "grounding",
    "patch",
    "patched_label_logits",
    "probe_layers",
    "run_probes",
    "steer_heads",
]
