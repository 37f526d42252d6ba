"""What people call each family, and example checkpoints of it, keyed by HF ``model_type``.

The registry is keyed by ``model_type`` (what a checkpoint's ``config.json`` says); people say
"Qwen2.5-Omni" or "DeSTA2". This table is the one place that maps one onto the other, for
reprs, the support matrix and name lookups (``al.models.tiny("Qwen2.5-Omni")``).

Example:
    >>> family_title("qwen2_5_omni_thinker")
    'Qwen2.5-Omni'
    >>> canonical_name("Qwen2-Audio") == canonical_name("qwen2_audio")
    True
"""

from __future__ import annotations

import re

#: model_type -> the family's name as its authors write it
FAMILY_TITLES: dict[str, str] = {
    "qwen2_audio": "Qwen2-Audio",
    "qwen2_5_omni": "Qwen2.5-Omni",
    "qwen2_5_omni_thinker": "Qwen2.5-Omni",
    "qwen3_omni_moe": "Qwen3-Omni",
    "qwen3_omni_moe_thinker": "Qwen3-Omni",
    "voxtral": "Voxtral",
    "audioflamingo3": "Audio Flamingo 3",
    "musicflamingo": "Music Flamingo",
    "glmasr": "GLM-ASR",
    "qwen3_asr": "Qwen3-ASR",
    "granite_speech": "Granite Speech",
    "phi4_multimodal": "Phi-4-multimodal",
    "qwen": "Qwen-Audio-Chat",
    "DestaModel": "DeSTA2",
}

#: model_type -> example hub checkpoints (the ids transformers' own docs use, or the paper's)
EXAMPLE_CHECKPOINTS: dict[str, tuple[str, ...]] = {
    "qwen2_audio": ("Qwen/Qwen2-Audio-7B-Instruct", "Qwen/Qwen2-Audio-7B"),
    "qwen2_5_omni": ("Qwen/Qwen2.5-Omni-7B",),
    "qwen3_omni_moe": ("Qwen/Qwen3-Omni-30B-A3B-Instruct",),
    "voxtral": ("mistralai/Voxtral-Mini-3B-2507",),
    "audioflamingo3": ("nvidia/audio-flamingo-3-hf",),
    "musicflamingo": ("nvidia/music-flamingo-2601-hf",),
    "glmasr": ("zai-org/GLM-ASR-Nano-2512",),
    "qwen3_asr": ("Qwen/Qwen3-ASR-1.7B-hf",),
    "granite_speech": ("ibm-granite/granite-speech-3.3-2b",),
    "phi4_multimodal": ("microsoft/Phi-4-multimodal-instruct",),
    "qwen": ("Qwen/Qwen-Audio-Chat",),
    "DestaModel": ("DeSTA-ntu/DeSTA2-8B-beta",),
}
EXAMPLE_CHECKPOINTS["qwen2_5_omni_thinker"] = EXAMPLE_CHECKPOINTS["qwen2_5_omni"]
EXAMPLE_CHECKPOINTS["qwen3_omni_moe_thinker"] = EXAMPLE_CHECKPOINTS["qwen3_omni_moe"]


#: model_type -> how its inputs differ from the common case (docs/models.md)
INPUT_NOTES: dict[str, str] = {
    "qwen2_audio": "log-mel `input_features` (B, 128, T) + `feature_attention_mask`; `<|AUDIO|>` "
                   "placeholders; 30-s window",
    "qwen2_5_omni": "hub checkpoints are the composite (thinker + speech talker): audiolens loads and reads "
                    "the thinker; 3-D multimodal rotary positions (2-D ids are equivalent for audio-only "
                    "input); the HF processor needs torchvision",
    "qwen3_omni_moe": "the composite's thinker, as Qwen2.5-Omni; mixture-of-experts MLP (the residual stream "
                      "is standard)",
    "voxtral": "audio enters only through the processor's `apply_chat_template`, tokenized by mistral-common "
               "(`pip install 'audiolens[voxtral]'`); 30-s encoder chunks, each clip must fit one",
    "audioflamingo3": "`input_features` + `input_features_mask`; `<sound>` placeholders",
    "musicflamingo": "as Audio Flamingo 3, with sound begin/end tokens and a rotary time embedding on the "
                     "audio side",
    "glmasr": "as Audio Flamingo 3, on a Llama LM",
    "qwen3_asr": "Qwen2-Audio-style features on a Qwen3 LM",
    "granite_speech": "stacked mels (B, T/2, 160); residual branches scaled by `residual_multiplier` (so "
                      "`hook_resid_mid` is refused); checkpoints carry a speech LoRA adapter (peft ≥ 0.22, "
                      "`pip install 'audiolens[lora]'`)",
    "phi4_multimodal": "`audio_input_features` (B, T, 80) + `audio_embed_sizes`; decoder at `model.layers`; "
                       "the speech LoRA adapter is attached at load (peft ≥ 0.22)",
    "qwen": "remote code (`trust_remote_code=True`); `<audio>path</audio>` markup whose span the model "
            "overwrites with the encoder's output inside its forward; legacy tuple key/value cache; slow "
            "(tiktoken) tokenizer; transformers-4 members shimmed",
    "DestaModel": "remote code; Whisper transcribes the clip, a Q-Former turns its encoder states into 64 "
                  "vectors spliced into Llama-3's `inputs_embeds`, followed by the transcript; no "
                  "placeholder token; the audio mask hides the transcript too (paper footnote 4)",
}
INPUT_NOTES["qwen2_5_omni_thinker"] = INPUT_NOTES["qwen2_5_omni"]
INPUT_NOTES["qwen3_omni_moe_thinker"] = INPUT_NOTES["qwen3_omni_moe"]


def family_title(model_type: str) -> str:
    """The human name of a family (its ``model_type`` back when none is known)."""
    return FAMILY_TITLES.get(model_type, model_type)


def canonical_name(name: str) -> str:
    """``name`` folded for lookups: lower case, letters and digits only ("Qwen2.5-Omni" and
    "qwen2_5_omni" both give "qwen25omni")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
