"""Lenses: what each layer's residual says about the answer.

- :class:`LogitLens` (Eq. 1): the model's own final norm and unembedding on every layer's
  residual, read on the label tokens; :class:`LensResult` holds the label logits and computes the
  paper's quantities (Eq. 2–4), tables (:mod:`~audiolens.lenses.frames`) and plots
  (:mod:`~audiolens.lenses.plots`, matplotlib only when asked).
- :class:`TunedLens`: a trained affine translator per layer before the same head.
- :class:`TokenLens`: the top-k vocabulary tokens each layer decodes to, at every position.
- :class:`EncoderLens`: the decoder's answer when the audio encoder stops after each of its
  layers (through the encoder's own final norm, pooling and projector).

Modules: :mod:`~audiolens.lenses.base` (:class:`LabelLens`, what the label lenses share),
:mod:`~audiolens.lenses.logit` (:class:`Lens`, :class:`LogitLens`),
:mod:`~audiolens.lenses.result`, :mod:`~audiolens.lenses.tuned`, :mod:`~audiolens.lenses.token`,
:mod:`~audiolens.lenses.frames` (pandas tables) and :mod:`~audiolens.lenses.plots`.

Example:
    >>> res = al.LogitLens(task).run(model, batch)  # doctest: +SKIP
"""

from .base import LabelLens
from .encoder import EncoderLens, EncoderLensResult
from .logit import Lens, LogitLens
from .result import LensResult
from .token import TokenLens, TokenLensResult
from .tuned import TunedLens

__all__ = ["EncoderLens", "EncoderLensResult", "LabelLens", "Lens", "LensResult", "LogitLens", "TokenLens", "TokenLensResult", "TunedLens"]
