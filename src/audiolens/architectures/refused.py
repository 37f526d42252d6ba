"""Audio models refused on purpose: the paper's reading does not apply to them."""

from .base import refuse

refuse("kyutai_speech_to_text",
       "it reads codec frames summed into its token embeddings, with no prompt or chat template, "
       "so there are no audio and question spans to probe or mask")
refuse("voxtral_realtime",
       "it is a streaming model that takes new audio features at every step; audiolens reads "
       "models that see the whole clip before the prompt (use 'voxtral')")
