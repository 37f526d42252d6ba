"""The description of one audio-LLM family, and the registry that finds it by ``model_type``.

An :class:`Architecture` is data: module paths (decoder layers, final norm, unembedding,
backbone), how the audio placeholder is found, how each residual branch is scaled, what the
model does to its logits after the head, and how its key/value cache is cut back. The generic
machinery (hooks, lenses, masks, enrichment, ``run_many``) reads only this description and
never asks which family it is running. A family whose inputs cannot be built by its HF
processor alone supplies an ``encode`` function (see :mod:`audiolens.architectures.inputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypedDict

import torch
from jaxtyping import Int
from torch import Tensor, nn

from ..batch import FRAME_STAGES as FRAME_STAGES
from ..errors import (
    ArchitectureError as ArchitectureError,
)
from ..errors import (
    HookUnavailable as HookUnavailable,
)
from ..errors import (
    UnsupportedModelError as UnsupportedModelError,
)


@dataclass(frozen=True)
class KVCacheOps:
    """How to measure, cut back and widen a family's key/value cache.

    ``crop(cache, n)`` returns a cache holding the first ``n`` positions; it may change
    ``cache`` in place (``DynamicCache``) or return a new object (legacy tuple caches).
    ``repeat_rows(cache, n)`` repeats every row n times consecutively and ``keep_rows(cache,
    index)`` keeps the rows ``index`` (both may work in place); with them, several variants of
    the last token run as one batched step. Without them, variants run one step each.
    """

    length: Callable[[Any], int]
    crop: Callable[[Any, int], Any]
    repeat_rows: Callable[[Any, int], Any] | None = None
    keep_rows: Callable[[Any, Any], Any] | None = None


def _dynamic_crop(cache: Any, n: int) -> Any:
    extra = cache.get_seq_length() - n
    if extra > 0:
        cache.crop(-extra)  # transformers' crop takes the count of tokens to drop
    return cache


def _dynamic_repeat(cache: Any, n: int) -> Any:
    cache.batch_repeat_interleave(n)
    return cache


def _dynamic_keep(cache: Any, index: Any) -> Any:
    cache.batch_select_indices(index)
    return cache


DYNAMIC_CACHE = KVCacheOps(length=lambda cache: cache.get_seq_length(), crop=_dynamic_crop,
                           repeat_rows=_dynamic_repeat, keep_rows=_dynamic_keep)


def tuple_cache(seq_dim: int) -> KVCacheOps:
    """Ops for a legacy cache: one ``(key, value)`` tuple per layer, positions on ``seq_dim``.

    Example:
        >>> import torch
        >>> ops = tuple_cache(seq_dim=1)
        >>> cache = ((torch.zeros(2, 7, 4, 8), torch.zeros(2, 7, 4, 8)),)
        >>> ops.length(cache), ops.length(ops.crop(cache, 5))
        (7, 5)
    """

    def crop(cache: Any, n: int) -> Any:
        return tuple(tuple(t.narrow(seq_dim, 0, n) for t in layer) for layer in cache)

    return KVCacheOps(length=lambda cache: int(cache[0][0].shape[seq_dim]), crop=crop)


#: Reasons families give for offering no encoder hooks.
PACKED_ENCODER = ("its audio encoder convolves each clip in fixed windows and runs the frames of every clip "
                  "packed into one flat (frames, d) sequence; how many frames each window keeps depends on "
                  "the window size, which the library does not describe yet (Architecture.audio_frames), so "
                  "the frames cannot be shown per row exactly")
CLIPWISE_ENCODER = ('its audio is encoded clip by clip when the batch is prepared (the conformer encoder has no padding mask), so the forward receives finished input embeddings and never runs the encoder')
REMOTE_ENCODER = ("its audio tower is remote code shipped with the checkpoint, whose layer outputs "
                  "the library does not describe, so encoder and projector hooks are not offered")



@dataclass(frozen=True)
class AudioFrames:
    """How a family's audio path counts the frames of one clip, stage by stage.

    Args:
        lengths: ``lengths(mel) -> (encoder, encoder_out, projector)``: from each row's count of
            mel frames, how many frames each stage of :data:`FRAME_STAGES` holds (applied to
            the full feature width, the width of that stage's activations).
        seconds: how long one frame of each stage lasts, in seconds.
        feature_mask: the input holding each row's valid mel frames; None when the encoder has
            none (the count is then the clip's own length in mel frames).

    Example:
        >>> frames = whisper_frames(pool=2, feature_mask="feature_attention_mask")
        >>> [int(n) for n in frames.lengths(torch.tensor([100]))], frames.seconds
        ([50, 25, 25], (0.02, 0.04, 0.04))
    """

    lengths: Callable[[Int[Tensor, " batch"]], tuple[Tensor, Tensor, Tensor]] = field(compare=False)
    seconds: tuple[float, float, float]
    feature_mask: str | None = None


def whisper_frames(pool: int = 1, merge: int = 1, feature_mask: str | None = None) -> AudioFrames:
    """Frames of a Whisper-style tower: 100 mel frames per second, two convolutions (the second
    of stride 2) give 50 encoder frames per second, average pooling by ``pool`` gives the tower's
    output, and the projector reads ``merge`` consecutive output frames per audio token.

    Example:
        >>> [int(n) for n in whisper_frames(merge=4).lengths(torch.tensor([3000]))]
        [1500, 1500, 375]
    """

    def lengths(mel: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        encoder = (mel - 1) // 2 + 1  # conv kernel 3, padding 1, stride 2
        out = (encoder - pool) // pool + 1 if pool > 1 else encoder
        tokens = (out - merge) // merge + 1 if merge > 1 else out
        return encoder, out, tokens

    step = 0.02
    return AudioFrames(lengths=lengths, seconds=(step, step * pool, step * pool * merge), feature_mask=feature_mask)


class AudioTower(TypedDict):
    """The :class:`Architecture` fields that describe an audio path (see :func:`whisper_tower`)."""

    audio_encoder: str
    encoder_layers: str
    encoder_final_norm: str
    encoder_pooling: str | None
    encoder_output: str | None
    projector: str
    encoder_packed: bool
    audio_frames: AudioFrames
    tokens_per_second: float


def whisper_tower(pool: int = 1, merge: int = 1, feature_mask: str | None = None, *, norm: str = "layer_norm",
                  projector: str = "model.multi_modal_projector", output: str | None = None,
                  packed: bool = False) -> AudioTower:
    """The audio path of a transformers Whisper-style tower at ``model.audio_tower``: its
    ``layers``, its final ``norm`` and (when it pools, ``pool`` > 1) its ``avg_pooler``, the
    ``projector`` (a path from the root), the frames of :func:`whisper_frames` and the audio
    tokens per second they give. A tower that projects inside itself names the module whose
    output is ``encoder.hook_out`` as ``output``; ``packed`` is ``Architecture.encoder_packed``.

    Example:
        >>> tower = whisper_tower(pool=2, feature_mask="feature_attention_mask")
        >>> tower["encoder_pooling"], tower["tokens_per_second"]
        ('model.audio_tower.avg_pooler', 25.0)
    """
    tower = "model.audio_tower"
    frames = whisper_frames(pool=pool, merge=merge, feature_mask=feature_mask)
    return AudioTower(
        audio_encoder=tower,
        encoder_layers=f"{tower}.layers",
        encoder_final_norm=f"{tower}.{norm}",
        encoder_pooling=f"{tower}.avg_pooler" if pool > 1 else None,
        encoder_output=None if output is None else f"{tower}.{output}",
        projector=projector,
        encoder_packed=packed,
        audio_frames=frames,
        tokens_per_second=1 / frames.seconds[-1],
    )


class DecoderPaths(TypedDict):
    """The :class:`Architecture` fields that place the decoder (see :func:`causal_lm_at`)."""

    layers: str
    final_norm: str
    unembed: str
    backbone: str
    causal_lm: str


def causal_lm_at(at: str = "", *, backbone: str = "model", layers: str = "layers", norm: str = "norm",
                 head: str = "lm_head") -> DecoderPaths:
    """The decoder of a causal LM held at ``at`` (``""``: the wrapped model is one): its
    ``backbone`` holds the decoder ``layers`` and the final ``norm``, its ``head`` unembeds,
    and its own forward gives the reference logits.

    Example:
        >>> paths = causal_lm_at("llama")
        >>> paths["layers"], paths["unembed"], paths["causal_lm"]
        ('llama.model.layers', 'llama.lm_head', 'llama')
    """

    def inside(path: str) -> str:
        return f"{at}.{path}" if at else path

    return DecoderPaths(layers=inside(f"{backbone}.{layers}"), final_norm=inside(f"{backbone}.{norm}"),
                        unembed=inside(head), backbone=inside(backbone), causal_lm=at)


#: ``from_pretrained`` options that locate files: they apply to config, tokenizer and processor too.
HUB_OPTIONS = ("revision", "token", "cache_dir", "trust_remote_code", "local_files_only")


def hub_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options in ``kwargs`` that locate files (see :data:`HUB_OPTIONS`).

    Example:
        >>> hub_options({"revision": "main", "dtype": "bfloat16"})
        {'revision': 'main'}
    """
    return {k: v for k, v in kwargs.items() if k in HUB_OPTIONS}


def with_auto_processor(load_model: Callable[..., nn.Module]) -> Callable[..., tuple[nn.Module, Any]]:
    """A family's ``load`` from its model loader: ``load_model(name_or_path, **kwargs)`` and the
    checkpoint's ``AutoProcessor`` (found with the same hub options).

    Example:
        >>> load = with_auto_processor(lambda name, **kwargs: name)  # doctest: +SKIP
        >>> model, processor = load("ibm-granite/granite-speech-3.3-2b", revision="main")  # doctest: +SKIP
    """

    def load(name_or_path: str, **kwargs: Any) -> tuple[nn.Module, Any]:
        from transformers import AutoProcessor

        return load_model(name_or_path, **kwargs), AutoProcessor.from_pretrained(name_or_path, **hub_options(kwargs))

    load.__doc__ = f"The model (:func:`{load_model.__name__}`) and its processor."
    return load


def config_value(config: Any, key: str, default: Any = None) -> Any:
    """``key`` on ``config`` or, failing that, on its sub-configs (``text_config``, ...).

    Example:
        >>> from transformers import Qwen2AudioConfig
        >>> config_value(Qwen2AudioConfig(), "rms_norm_eps")
        1e-06
    """
    seen: set[int] = set()
    stack = [config]
    while stack:
        cfg = stack.pop(0)
        if cfg is None or id(cfg) in seen:
            continue
        seen.add(id(cfg))
        value = getattr(cfg, key, None)
        if value is not None:
            return value
        stack += [getattr(cfg, name) for name in dir(cfg) if name.endswith("_config")
                  and hasattr(getattr(cfg, name, None), "to_dict")]
    return default


@dataclass(frozen=True)
class AudioPath:
    """A wrapped model's audio path, found from its :class:`Architecture`
    (:meth:`Architecture.resolve_encoder`).

    Args:
        tower: the audio tower (``audio_encoder``).
        layers: its transformer layers (``encoder.blocks``).
        output: the module whose output is ``encoder.hook_out`` (the tower, unless it projects
            inside itself).
        projector: the module whose output is ``projector.hook_out``.
        final_norm, pooling: the tower's final norm and pooling, where it has them.
    """

    tower: nn.Module
    layers: nn.ModuleList
    output: nn.Module
    projector: nn.Module
    final_norm: nn.Module | None = None
    pooling: nn.Module | None = None


@dataclass(frozen=True)
class Architecture:
    """Module paths (dotted, from the wrapped model's root) and quirks of one audio-LLM family.

    ``backbone`` runs the audio encoder and the decoder and returns ``last_hidden_state``
    (final-normed) without applying the head, so full-vocabulary logits are never computed at
    every position. Keys ending in ``_key`` name config attributes, looked up with
    :func:`config_value` on the wrapped model's config.

    Args:
        name: the HF ``config.model_type`` this describes.
        hf_class: the transformers class that loads a checkpoint (``"AutoModelForCausalLM"``
            for remote code).
        layers, final_norm, unembed, backbone: module paths.
        attention: the self-attention module, relative to one decoder layer.
        mlp: the MLP (or mixture-of-experts) module, relative to one decoder layer.
        attn_output_proj: the attention's output projection, relative to ``attention`` (its
            input, split into heads, is ``attn.hook_z``).
        components_unavailable: why ``hook_attn_out`` / ``hook_mlp_out`` / ``attn.hook_z`` /
            ``attn.hook_pattern`` cannot be exact (None: they are).
        audio_token: the placeholder token's text, when the config does not hold its id.
        audio_token_id_keys: config attributes that may hold the placeholder id.
        submodel: for composite checkpoints, the child that is the audio-LLM (e.g. a thinker).
        causal_lm: the module whose own forward turns the prepared inputs into logits ("" = the
            root); the reference the library's results are checked against, for families whose
            root has no forward of its own.
        residual_multiplier_key: config attribute m when blocks add ``m · branch`` to the stream.
        resid_mid_unavailable: why ``hook_resid_mid`` cannot be exact (None: it is exact).
        logit_softcap_key: config attribute c when logits are ``c · tanh(logits / c)``.
        tokens_per_second: audio tokens per second of audio (for time axes).
        remote_code: the model's code comes with the checkpoint (``trust_remote_code=True``).
        render: family prompt rendering ``render(processor, prompt) -> str`` (the text of one row,
            ending with the probing prefix); None renders the processor's chat template with the
            audio as a list item (:func:`audiolens.architectures.inputs.render_prompt`).
        masked_spans: the spans the paper's audio masking (RQ4) hides from the answer token.
        encode: family input preparation ``encode(model, texts, waves) -> Encoded``; None uses
            the HF processor (:func:`audiolens.architectures.inputs.processor_encode`).
        forward_inputs: ``forward_inputs(inputs) -> kwargs`` turns a batch's per-row tensors into
            the keyword arguments the model's forward takes (e.g. a side input that is a dict);
            None passes them unchanged.
        kv_cache: how to measure and crop the family's cache.
        load: ``load(name_or_path, **kwargs) -> (nn.Module, processor)`` for families that load
            unusually.
        audio_encoder: the audio tower (its output is ``encoder.hook_out``); None: the family
            names none, and the encoder and projector hooks are unavailable.
        encoder_layers: the tower's transformer layers (a ModuleList, possibly empty): the input
            of the first is ``encoder.hook_embed``, the output of layer l
            ``encoder.blocks.{l}.hook_resid_post``.
        encoder_final_norm, encoder_pooling: the tower's final norm and pooling modules (None
            where it has none); they run after the last layer, inside the tower.
        projector: the module that maps the tower's frames to the decoder's audio rows (its
            output is ``projector.hook_out``).
        audio_frames: how the audio path counts frames (:class:`AudioFrames`), for
            ``AudioBatch.frame_mask`` and ``frame_seconds``.
        encoder_unavailable: why the encoder and projector hooks cannot be exact (None: they
            are, where ``audio_encoder`` is given).
        encoder_output: the module whose output is ``encoder.hook_out`` (None: the tower), for
            towers that project inside themselves.
        encoder_packed: the tower runs every clip's frames concatenated on one axis (no batch
            axis); the hooks show them per row, ``(batch, frames, d)``, using ``audio_frames``.

    A family without a placeholder token (audio enters as input embeddings) sets
    ``audio_token_id_keys=()`` and ``audio_token=None``.

    Example:
        >>> from audiolens.architectures import ARCHITECTURES
        >>> ARCHITECTURES["qwen2_audio"].layers
        'model.language_model.layers'
    """

    name: str
    hf_class: str
    layers: str = "model.language_model.layers"
    final_norm: str = "model.language_model.norm"
    unembed: str = "lm_head"
    backbone: str = "model"
    attention: str = "self_attn"
    mlp: str = "mlp"
    attn_output_proj: str = "o_proj"
    components_unavailable: str | None = None
    audio_token: str | None = None
    audio_token_id_keys: tuple[str, ...] = ("audio_token_id", "audio_token_index")
    submodel: str | None = None
    causal_lm: str = ""
    residual_multiplier_key: str | None = None
    resid_mid_unavailable: str | None = None
    logit_softcap_key: str | None = None
    tokens_per_second: float | None = None
    remote_code: bool = False
    render: Callable[..., str] | None = field(default=None, compare=False)
    masked_spans: tuple[str, ...] = ("audio",)
    encode: Callable[..., Any] | None = field(default=None, compare=False)
    forward_inputs: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, compare=False)
    kv_cache: KVCacheOps = field(default=DYNAMIC_CACHE, compare=False)
    load: Callable[..., tuple[nn.Module, Any]] | None = field(default=None, compare=False)
    audio_encoder: str | None = None
    encoder_layers: str | None = None
    encoder_final_norm: str | None = None
    encoder_pooling: str | None = None
    projector: str | None = None
    audio_frames: AudioFrames | None = None
    encoder_unavailable: str | None = None
    encoder_output: str | None = None
    encoder_packed: bool = False

    def packed_lengths(self, inputs: dict[str, Tensor]) -> dict[str, tuple[Tensor, int]] | None:
        """For a packed tower: each stage's per-row frame counts and padded width for these
        inputs (from ``audio_frames`` and the feature mask); None for a tower with a batch axis."""
        if not self.encoder_packed:
            return None
        frames = self.audio_frames
        if frames is None or frames.feature_mask is None:
            raise ArchitectureError(f"{self.name}: a packed encoder needs audio_frames with a feature_mask")
        if frames.feature_mask not in inputs:  # no audio in this forward (a cached step): nothing to show
            return None
        mel = inputs[frames.feature_mask].sum(-1).long()
        widths = frames.lengths(torch.tensor([inputs[frames.feature_mask].shape[-1]]))
        return {stage: (n, int(w)) for stage, n, w in zip(FRAME_STAGES, frames.lengths(mel), widths)}

    def encoder_missing(self) -> str | None:
        """Why the encoder and projector hooks are not offered (None: they are)."""
        if self.encoder_unavailable:
            return self.encoder_unavailable
        if self.audio_encoder is None or self.encoder_layers is None or self.projector is None:
            return ("its architecture names no audio encoder; describe it with Architecture("
                    "audio_encoder=..., encoder_layers=..., projector=...)")
        return None

    def resolve_encoder(self, hf_model: nn.Module) -> AudioPath:
        """The audio path's modules on ``hf_model``; raise :class:`ArchitectureError` naming a
        bad path, or one the description lacks."""
        if self.audio_encoder is None or self.encoder_layers is None or self.projector is None:
            raise ArchitectureError(f"{self.name}: {self.encoder_missing()}")

        def optional(path: str | None, what: str) -> nn.Module | None:
            return None if path is None else self._get(hf_model, path, what)

        tower = self._get(hf_model, self.audio_encoder, "audio_encoder")
        layers = self._get(hf_model, self.encoder_layers, "encoder_layers")
        if not isinstance(layers, nn.ModuleList):
            raise ArchitectureError(
                f"{self.name}: {self.encoder_layers!r} is {type(layers).__name__}, expected the "
                "ModuleList of the audio encoder's layers"
            )
        return AudioPath(
            tower=tower,
            layers=layers,
            output=optional(self.encoder_output, "encoder_output") or tower,
            projector=self._get(hf_model, self.projector, "projector"),
            final_norm=optional(self.encoder_final_norm, "encoder_final_norm"),
            pooling=optional(self.encoder_pooling, "encoder_pooling"),
        )

    def resolve(self, hf_model: nn.Module) -> dict[str, nn.Module]:
        """Look up every path on ``hf_model``; raise :class:`ArchitectureError` naming a bad one."""
        found = {}
        for name in ("layers", "final_norm", "unembed", "backbone"):
            found[name] = self._get(hf_model, getattr(self, name), name)
        layers = found["layers"]
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise ArchitectureError(
                f"{self.name}: {self.layers!r} on {type(hf_model).__name__} is "
                f"{type(layers).__name__}, expected a non-empty ModuleList of decoder layers"
            )
        self._get(layers[0], self.attention, "attention", prefix=f"{self.layers}.0.")
        weight = getattr(found["unembed"], "weight", None)
        if weight is None or weight.ndim != 2:
            raise ArchitectureError(f"{self.name}: {self.unembed!r} has no 2-D weight to unembed with")
        return found

    def _get(self, root: nn.Module, path: str, what: str, prefix: str = "") -> nn.Module:
        try:
            return root.get_submodule(path)
        except AttributeError:
            children = [name for name, _ in root.named_children()]
            raise ArchitectureError(
                f"{self.name}: no module {prefix + path!r} ({what}) in {type(root).__name__}; "
                f"its top-level modules are {children}. Describe the model with "
                f"audiolens.Architecture(..., {what}='<dotted path>') and pass it as "
                "HookedAudioLM.from_hf(model, processor, architecture=...)"
            ) from None

    def missing_components(self, layer: nn.Module) -> str | None:
        """Why component hooks cannot be offered on decoder ``layer`` (declared, or a missing
        module path), else None."""
        if self.components_unavailable:
            return self.components_unavailable
        for path in (self.mlp, f"{self.attention}.{self.attn_output_proj}"):
            try:
                layer.get_submodule(path)
            except AttributeError:
                return f"no module {path!r} in a decoder layer; set Architecture(mlp=..., attn_output_proj=...)"
        return None

    def hf_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the model's forward for a batch's ``inputs``."""
        return dict(inputs) if self.forward_inputs is None else self.forward_inputs(dict(inputs))

    def audio_token_id(self, config: Any, tokenizer: Any) -> int | None:
        """The placeholder id: from the config, else the tokenizer's id for ``audio_token``;
        None for a family that declares no placeholder."""
        if not self.audio_token_id_keys and self.audio_token is None:
            return None
        for key in self.audio_token_id_keys:
            value = config_value(config, key)
            if isinstance(value, int):
                return value
        if self.audio_token is not None:
            token_id = tokenizer.convert_tokens_to_ids(self.audio_token)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                return int(token_id)
        raise ArchitectureError(
            f"{self.name}: no audio placeholder id in the config ({list(self.audio_token_id_keys)}) "
            f"and the tokenizer has no token {self.audio_token!r}"
        )


class WrappedModel(Protocol):
    """What a family's ``encode`` and ``load`` and the backends read of the wrapper
    (:class:`~audiolens.hooked.HookedAudioLM` satisfies it); families type against this, never
    against the wrapper itself."""

    architecture: Architecture
    processor: Any

    @property
    def hf_model(self) -> nn.Module: ...

    @property
    def tokenizer(self) -> Any: ...

    @property
    def audio_token_id(self) -> int | None: ...

    @property
    def sampling_rate(self) -> int: ...

    @property
    def max_audio_seconds(self) -> float | None: ...

    @property
    def layers(self) -> nn.ModuleList: ...

    @property
    def final_norm(self) -> nn.Module: ...

    @property
    def backbone(self) -> nn.Module: ...

    @property
    def device(self) -> torch.device: ...


ARCHITECTURES: dict[str, Architecture] = {}

#: model types refused on purpose, with the reason given to the user.
UNSUPPORTED: dict[str, str] = {}


def register(arch: Architecture) -> Architecture:
    """Add ``arch`` to :data:`ARCHITECTURES` under its ``name`` (the HF ``model_type``)."""
    ARCHITECTURES[arch.name] = arch
    return arch


def composite(thinker: Architecture, name: str) -> Architecture:
    """The composite hub checkpoints (``model_type`` ``name``) around the audio-LLM ``thinker``.

    Such a checkpoint loads through the thinker's class, which reads the thinker's weights
    alone: the speech talker and vocoder are never built. ``submodel`` wraps the thinker of a
    composite model already in memory; paths are the thinker's, relative to it.

    Example:
        >>> composite(ARCHITECTURES["qwen2_5_omni_thinker"], "qwen2_5_omni").submodel
        'thinker'
    """
    return replace(thinker, name=name, submodel="thinker")


def refuse(model_type: str, reason: str) -> None:
    """Record that ``model_type`` is refused, and why."""
    UNSUPPORTED[model_type] = reason


def architecture_for(config_or_type: Any) -> Architecture:
    """The registered architecture for an HF config (or its ``model_type``), or a named error.

    Example:
        >>> architecture_for("qwen2_audio").hf_class
        'Qwen2AudioForConditionalGeneration'
    """
    model_type = config_or_type if isinstance(config_or_type, str) else config_or_type.model_type
    if model_type in ARCHITECTURES:
        return ARCHITECTURES[model_type]
    if model_type in UNSUPPORTED:
        raise UnsupportedModelError(f"{model_type!r} is not supported: {UNSUPPORTED[model_type]}")
    if getattr(config_or_type, "is_encoder_decoder", False):
        raise UnsupportedModelError(
            f"{model_type!r} is an encoder-decoder model: it has no decoder-only residual stream "
            "over audio and prompt tokens for a logit lens to read"
        )
    raise ArchitectureError(
        f"no architecture registered for model_type {model_type!r} (known: "
        f"{sorted(ARCHITECTURES)}). Describe it with audiolens.Architecture(name=..., "
        "hf_class=..., layers=..., final_norm=..., unembed=..., backbone=...) and pass "
        "architecture=... when wrapping; see docs/adapters.md"
    )
