"""Audio models refused on purpose: the paper's reading does not apply to them."""

from .base import refuse

refuse("kyutai_speech_to_text",
       "it reads codec frames summed into its token embeddings, with no prompt or chat template, "
       "so there are no audio and question spans to probe or mask")
refuse("voxtral_realtime",
       "it is a streaming model that takes new audio features at every step; audiolens reads "
       "models that see the whole clip before the prompt (use 'voxtral')")
refuse("gemma3n",
       "its decoder (AltUp) carries four parallel residual streams through every layer, each "
       "layer's output being a (4, batch, seq, hidden) stack, and mixes them into one hidden state "
       "(learned projections, magnitude matching, mean) only after the last layer; between layers "
       "there is no single residual stream for the final norm and head to read, so the layer-wise "
       "lens, Eq. 5 enrichment and the resid hooks have no exact meaning on it")
