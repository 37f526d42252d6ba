"""``HookedAudioLM``: TransformerLens hook points on an unmodified Hugging Face audio-LLM.

The HF model is held, never converted or copied. During a forward pass (and only then) small
PyTorch hooks on its decoder layers route the residual stream through named
:class:`~transformer_lens.hook_points.HookPoint` modules (the tree and its names are in
:mod:`audiolens.hook_points`), so ``run_with_cache``, ``run_with_hooks`` and ``hooks()`` behave
as in TransformerLens. Layer numbers in the paper's sense (ℓ = 0 embedding output, ℓ = output of
block ℓ) map onto those names with :meth:`HookedAudioLM.resid_name`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import ActivationCache, HookedRootModule
from transformer_lens.hook_points import HookPoint

from .architectures import (
    Architecture,
    ArchitectureError,
    HookUnavailable,
    architecture_for,
    config_value,
    hub_options,
)
from .architectures.base import AudioPath, with_auto_processor
from .architectures.inputs import PrepareOptions, audio_window, prepare_batch
from .backends.sites import checked_hook
from .backends.torch_hooks import routed
from .batch import AudioBatch, Positions, gather_positions, position_index
from .checks import whole_number
from .errors import EncoderLayerError as EncoderLayerError
from .errors import UnknownHookError as UnknownHookError
from .hook_points import (
    COMPONENT_HOOKS,
    QUERY_AXIS_2,
    BlockHooks,
    EncoderHooks,
    FinalNormHooks,
    ProjectorHooks,
    is_audio_hook,
)
from .tasks import Prompt

if TYPE_CHECKING:
    from typing_extensions import Unpack


class HookedAudioLM(HookedRootModule):
    """An HF audio-LLM with TransformerLens-named hook points on its residual stream.

    Build it with :meth:`from_pretrained` (a checkpoint directory or hub id), :meth:`from_hf`
    (a model already in memory) or ``audiolens.models.tiny_qwen2_audio()``.

    Example:
        >>> import audiolens as al, numpy as np
        >>> model = al.models.tiny_qwen2_audio(seed=0)
        >>> task = al.sakura_task("gender")
        >>> wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32")
        >>> batch = model.prepare([wav], 16000, task.prompt("P3"), labels=["male"])
        >>> logits, cache = model.run_with_cache(batch, positions="last")
        >>> cache["blocks.0.hook_resid_post"].shape
        torch.Size([1, 1, 64])
    """

    # Held in __dict__ (outside the module tree): declared here for type checkers.
    _hf_model: nn.Module
    _hf: dict[str, Any]
    _components_missing: str | None
    _audio_token_id: int | None
    _encoder_missing: str | None
    _audio: AudioPath | None  # the HF audio path's modules (None without encoder hooks)
    _run_lock: threading.RLock

    def __init__(self, hf_model: nn.Module, processor: Any, architecture: Architecture | None = None):
        super().__init__()
        arch = architecture or architecture_for(hf_model.config)
        if arch.submodel:  # a composite checkpoint: wrap the audio-LLM inside it
            hf_model = hf_model.get_submodule(arch.submodel)
            arch = architecture or architecture_for(hf_model.config)
        found: dict[str, Any] = arch.resolve(hf_model)
        # Held outside the module tree so that wrapping never touches the HF model's modules.
        self.__dict__["_hf_model"] = hf_model
        self.__dict__["_hf"] = found
        self.processor = processor
        self.architecture = arch
        config = hf_model.config
        multiplier = config_value(config, arch.residual_multiplier_key) if arch.residual_multiplier_key else None
        softcap = config_value(config, arch.logit_softcap_key) if arch.logit_softcap_key else None
        self.__dict__["_components_missing"] = arch.missing_components(found["layers"][0])
        self.blocks = nn.ModuleList(
            BlockHooks(with_mid=arch.resid_mid_unavailable is None, with_components=not self._components_missing)
            for _ in found["layers"]
        )
        self.ln_final = FinalNormHooks()
        missing = arch.encoder_missing()
        audio = None if missing else arch.resolve_encoder(hf_model)
        self.__dict__["_encoder_missing"] = missing
        self.__dict__["_audio"] = audio
        if audio is not None:
            self.encoder = EncoderHooks(len(audio.layers))
            self.projector = ProjectorHooks()
        self.cfg = SimpleNamespace(
            n_layers=len(found["layers"]), d_model=self.W_U.shape[1],
            residual_multiplier=float(multiplier) if multiplier is not None else 1.0,
            logit_softcap=float(softcap) if softcap else None,
        )
        self.__dict__["_audio_token_id"] = arch.audio_token_id(config, getattr(processor, "tokenizer", processor))
        # Absolute position of the first token in the current forward (> 0 with a prefix cache).
        self.__dict__["_chunk_start"] = 0
        # Hook registrations on the HookPoints and the chunk offset are per-run state on this
        # shared object: runs from several threads take turns (re-entrant: a run nests hooks()).
        self.__dict__["_run_lock"] = threading.RLock()
        self.setup()  # type: ignore[no-untyped-call]  # TransformerLens leaves it unannotated

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_hf(
        cls, hf_model: nn.Module, processor: Any, architecture: Architecture | None = None
    ) -> HookedAudioLM:
        """Wrap a model already in memory (nothing is copied or changed)."""
        return cls(hf_model, processor, architecture)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        torch_dtype: torch.dtype | str | None = None,
        device: str | torch.device | None = None,
        architecture: Architecture | None = None,
        attn_implementation: str | None = None,
        **hf_kwargs: Any,
    ) -> HookedAudioLM:
        """Load a checkpoint (local directory or hub id) and its processor, then wrap it.

        Example:
            >>> model = HookedAudioLM.from_pretrained("Qwen/Qwen2-Audio-7B-Instruct",
            ...     torch_dtype=torch.bfloat16, device="cuda")  # doctest: +SKIP
        """
        import transformers
        from transformers import AutoConfig

        name_or_path = str(name_or_path)
        if not Path(name_or_path).exists() and (
            os.path.isabs(name_or_path) or name_or_path.startswith((".", "~"))
        ):
            raise FileNotFoundError(f"no checkpoint folder at {name_or_path!r}")
        # Options that locate files apply to config and processor too; the rest (device_map,
        # quantization_config, ...) only to the model.
        shared = hub_options(hf_kwargs)
        try:
            # Remote code runs only when asked for: no interactive prompt without the flag.
            config = AutoConfig.from_pretrained(name_or_path, **{"trust_remote_code": False, **shared})
        except ValueError as exc:
            if "trust_remote_code" in str(exc) and not shared.get("trust_remote_code"):
                raise ArchitectureError(
                    f"{name_or_path!r} runs code shipped with the checkpoint; read it, then pass "
                    "trust_remote_code=True to load it"
                ) from exc
            raise
        arch = architecture or architecture_for(config)
        if arch.remote_code and not shared.get("trust_remote_code"):
            raise ArchitectureError(
                f"{arch.name} runs code shipped with the checkpoint; read it, then pass "
                "trust_remote_code=True to load it"
            )
        load_kwargs = dict(hf_kwargs)
        if torch_dtype is not None:
            load_kwargs["dtype"] = torch_dtype
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        load = arch.load or with_auto_processor(getattr(transformers, arch.hf_class).from_pretrained)
        hf_model, processor = load(name_or_path, **load_kwargs)
        if device is not None:
            hf_model = hf_model.to(device)
        hf_model.eval()
        if architecture is None and getattr(hf_model.config, "model_type", None) != config.model_type:
            # The class loaded part of a composite checkpoint (e.g. a thinker class reads only
            # the thinker's weights): the loaded model's own config names what it is.
            arch = architecture_for(hf_model.config)
        return cls(hf_model, processor, arch)

    # ----------------------------------------------------------------- properties
    @property
    def hf_model(self) -> nn.Module:
        return self._hf_model

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def n_layers(self) -> int:
        return int(self.cfg.n_layers)

    @property
    def W_U(self) -> Float[Tensor, "vocab d_model"]:
        """The unembedding matrix (the LM head's weight), rows = vocabulary."""
        return cast(Tensor, self._hf["unembed"].weight)

    @property
    def final_norm(self) -> nn.Module:
        return cast(nn.Module, self._hf["final_norm"])

    @property
    def audio_token_id(self) -> int | None:
        """The id of the audio placeholder token (from the config or the tokenizer); None for a
        family whose audio enters as input embeddings."""
        return self._audio_token_id

    @property
    def sampling_rate(self) -> int:
        """The sampling rate the model's feature extractor expects."""
        return audio_window(self.processor)[0]

    @property
    def max_audio_seconds(self) -> float | None:
        """The longest clip one audio window holds (None: no limit)."""
        return audio_window(self.processor)[1]

    @property
    def layers(self) -> nn.ModuleList:
        """The HF model's decoder layers (block ℓ is ``layers[ℓ - 1]``)."""
        return cast(nn.ModuleList, self._hf["layers"])

    @property
    def backbone(self) -> nn.Module:
        """The module that runs encoder and decoder and returns the final-normed hidden state."""
        return cast(nn.Module, self._hf["backbone"])

    @functools.cached_property
    def _cache_argument(self) -> str:
        # ``cache`` from transformers 5.25 on, ``past_key_values`` before it and in remote code.
        return "cache" if "cache" in inspect.signature(self.backbone.forward).parameters else "past_key_values"

    def cache_kwargs(self, cache: Any, use_cache: bool) -> dict[str, Any]:
        """A key/value cache and ``use_cache`` under the names the backbone's forward takes
        (``cache`` from transformers 5.25 on, ``past_key_values`` before it and in remote code)."""
        return {self._cache_argument: cache, "use_cache": use_cache}

    @staticmethod
    def returned_cache(output: Any) -> Any:
        """The key/value cache in a backbone's output, under either name (see
        :meth:`cache_kwargs`)."""
        for name in ("cache", "past_key_values"):
            value = getattr(output, name, None)
            if value is not None:
                return value
        return None

    @property
    def n_encoder_layers(self) -> int:
        """How many transformer layers the audio encoder has (0 when it has none, or when the
        family offers no encoder hooks: see :attr:`encoder_missing`)."""
        return len(self._audio.layers) if self._audio else 0

    @property
    def encoder_missing(self) -> str | None:
        """Why the encoder and projector hooks are not offered (None: they are)."""
        return self._encoder_missing

    @property
    def audio_path(self) -> AudioPath | None:
        """The HF modules of the audio path (tower, layers, output, projector); None without
        encoder hooks."""
        return self._audio

    @property
    def audio_encoder(self) -> nn.Module | None:
        """The HF audio tower (its output is ``encoder.hook_out``); None without encoder hooks."""
        return self._audio.tower if self._audio else None

    @property
    def encoder_output(self) -> nn.Module | None:
        """The HF module whose output is ``encoder.hook_out`` (the tower, unless the family
        projects inside it); None without encoder hooks."""
        return self._audio.output if self._audio else None

    @property
    def encoder_layers(self) -> nn.ModuleList:
        """The HF audio encoder's layers (empty without encoder hooks)."""
        return self._audio.layers if self._audio else nn.ModuleList()

    @property
    def audio_projector(self) -> nn.Module | None:
        """The HF projector (its output is ``projector.hook_out``); None without encoder hooks."""
        return self._audio.projector if self._audio else None

    def encoder_name(self, layer: int) -> str:
        """Hook name of the encoder residual at encoder layer ℓ (0 = ``encoder.hook_embed``,
        ℓ = output of encoder layer ℓ, i.e. ``encoder.blocks.{ℓ-1}.hook_resid_post``).

        Example:
            >>> model.encoder_name(0), model.encoder_name(2)  # doctest: +SKIP
            ('encoder.hook_embed', 'encoder.blocks.1.hook_resid_post')
        """
        self.check_hook_names(["encoder.hook_out"])
        if not 0 <= layer <= self.n_encoder_layers:
            raise EncoderLayerError(f"encoder layer {layer} is outside 0..{self.n_encoder_layers} "
                                    f"({self.architecture.name} has {self.n_encoder_layers} encoder layers)")
        return "encoder.hook_embed" if layer == 0 else f"encoder.blocks.{layer - 1}.hook_resid_post"

    def unembed(
        self, hidden: Float[Tensor, "... d_model"], token_ids: Sequence[int] | None = None
    ) -> Float[Tensor, "... vocab"]:
        """The model's head on final-normed ``hidden``: logits at ``token_ids`` (all when None),
        with the family's output transform (e.g. soft-capping) applied as the model does.

        Example:
            >>> h = torch.zeros(2, model.cfg.d_model)  # doctest: +SKIP
            >>> model.unembed(h, [5, 7]).shape  # doctest: +SKIP
            torch.Size([2, 2])
        """
        head = self._hf["unembed"]
        rows = None if token_ids is None else torch.as_tensor(list(token_ids), device=head.weight.device)
        weight = head.weight if rows is None else head.weight[rows]
        out = hidden.to(device=weight.device, dtype=weight.dtype) @ weight.T
        bias = getattr(head, "bias", None)
        if bias is not None:
            out = out + (bias if rows is None else bias[rows])
        cap: float | None = self.cfg.logit_softcap
        return out if cap is None else torch.tanh(out / cap) * cap

    def crop_cache(self, cache: Any, length: int) -> Any:
        """``cache`` cut back to its first ``length`` positions (the family's cache rules)."""
        return self.architecture.kv_cache.crop(cache, length)

    @property
    def components_missing(self) -> str | None:
        """Why ``hook_attn_out``, ``hook_mlp_out`` and the ``attn.*`` hooks are absent (None:
        they are present)."""
        return self._components_missing

    @property
    def chunk_start(self) -> int:
        """Absolute position of the first token of the forward in progress (> 0 after a cached
        prefix): hooks that index positions translate absolute positions with it."""
        return int(self.__dict__["_chunk_start"])

    @contextlib.contextmanager
    def starting_at(self, start: int) -> Iterator[None]:
        """Mark the forward run inside as starting at absolute position ``start``."""
        with self._run_lock:
            self.__dict__["_chunk_start"] = start
            try:
                yield
            finally:
                self.__dict__["_chunk_start"] = 0

    @contextlib.contextmanager
    def hooks(
        self, fwd_hooks: Sequence[tuple[Any, Callable[..., Any]]] = (),
        bwd_hooks: Sequence[tuple[Any, Callable[..., Any]]] = (),
        reset_hooks_end: bool = True, clear_contexts: bool = False,
    ) -> Iterator[HookedAudioLM]:
        """TransformerLens' ``hooks()``, holding the model for this thread until it exits:
        runs from several threads take turns, so no thread's hooks reach another's run."""
        with self._run_lock, super().hooks(list(fwd_hooks), list(bwd_hooks), reset_hooks_end,
                                           clear_contexts) as model:
            yield model

    @property
    def device(self) -> torch.device:
        """Where the head (unembedding) lives: lens outputs are computed there."""
        return self.W_U.device

    @property
    def input_device(self) -> torch.device:
        """Where the token embedding lives: model inputs go there (models split with device_map)."""
        try:
            embed = cast(Any, self.hf_model).get_input_embeddings()  # an HF method, not nn.Module's
        except NotImplementedError:  # some remote-code models do not say
            embed = None
        return embed.weight.device if embed is not None else self.device

    def to(self, *args: Any, **kwargs: Any) -> HookedAudioLM:
        self.hf_model.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def _describe(self) -> dict[str, Any]:
        """What the one-line repr shows: which model this is, not its tree of hook points."""
        from .architectures.names import family_title

        name = self.architecture.name
        title = family_title(name)
        return {
            "family": title if title == name else f"{title} ({name})",
            "checkpoint": getattr(self.hf_model.config, "_name_or_path", "") or None,
            "n_layers": self.n_layers, "d_model": self.cfg.d_model,
            "n_encoder_layers": getattr(self, "n_encoder_layers", None),
            "dtype": str(self.W_U.dtype).removeprefix("torch."), "device": str(self.device),
        }

    def __repr__(self) -> str:
        """One line (the hook names: ``model.hook_dict``).

        Example:
            >>> import audiolens as al
            >>> al.models.tiny_qwen2_audio(seed=0)  # doctest: +ELLIPSIS
            HookedAudioLM(family='Qwen2-Audio (qwen2_audio)', checkpoint=None, n_layers=4, d_model=64, ...)
        """
        fields = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in self._describe().items())
        return f"HookedAudioLM({fields})"

    def resid_name(self, layer: int) -> str:
        """Hook name of the residual at paper layer ℓ (0 = embedding output, ℓ = block ℓ's output).

        Example:
            >>> model.resid_name(0), model.resid_name(3)  # doctest: +SKIP
            ('blocks.0.hook_resid_pre', 'blocks.2.hook_resid_post')
        """
        layer = whole_number(layer, "layer", low=0, high=self.n_layers)
        return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"

    # ----------------------------------------------------------------- inputs
    def prepare(
        self,
        audios: Sequence[Any],
        sampling_rate: int | Sequence[int],
        prompt: Prompt,
        labels: Sequence[str] | None = None,
        **options: Unpack[PrepareOptions],
    ) -> AudioBatch:
        """Render ``prompt`` with the model's chat template around each clip and tokenize.

        Clips are checked (empty, NaN, infinite and too-long clips raise), mixed to mono and
        resampled to the processor's rate. ``labels`` (one per clip) must come from the
        prompt's label set (or ``label_set``); they become ``batch.targets``. Rows are
        left-padded and carry explicit position ids. ``options``: ``label_set``, ``ids`` and
        ``truncate`` (see :class:`~audiolens.architectures.inputs.PrepareOptions`).
        """
        batch = prepare_batch(self, audios, sampling_rate, prompt, labels, **options)
        self._check_audio_inputs(batch)
        return batch

    def _check_audio_inputs(self, batch: AudioBatch) -> None:
        """Refuse a backbone that would silently drop the batch's audio inputs (a text-only
        model wrapped with an audio processor takes them into ``**kwargs`` and ignores them)."""
        import inspect

        params = inspect.signature(self.backbone.forward).parameters
        given = self.architecture.hf_kwargs(batch.inputs)
        audio_keys = [k for k in given if k not in ("input_ids", "attention_mask", "position_ids", "inputs_embeds")]
        ignored = [k for k in audio_keys if k not in params]
        if ignored:
            raise ArchitectureError(
                f"{type(self.backbone).__name__}.forward has no parameter for the audio inputs {ignored}: "
                "this model would ignore the audio. Wrap an audio-LLM, or point Architecture(backbone=...) "
                "at the module that runs its audio encoder"
            )

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        batch: AudioBatch | dict[str, Tensor],
        *,
        positions: Positions = None,
        return_type: str | None = "logits",
        **forward_kwargs: Any,
    ) -> Tensor | None:
        """Run the model with the hook points live.

        Returns next-token logits ``(batch, seq, vocab)``, or ``(batch, k, vocab)`` at the
        ``positions`` asked, or None with ``return_type=None`` (the head is then never applied,
        which is what lenses use).
        """
        inputs = batch.inputs if isinstance(batch, AudioBatch) else batch
        out = self.run_backbone(inputs, **forward_kwargs)
        if return_type is None:
            return None
        hidden = out.last_hidden_state
        if positions is not None:
            hidden = gather_positions(hidden, position_index(batch, positions))
        return self.unembed(hidden)

    def run_backbone(
        self, inputs: dict[str, Tensor], *, past_key_values: Any = None, use_cache: bool = False, **kwargs: Any
    ) -> Any:
        """The HF backbone's output (``last_hidden_state``, ``past_key_values``) with hooks live.

        With ``past_key_values``, ``inputs`` holds only the new tokens; during the call
        :attr:`chunk_start` is the absolute position of the first of them, so hooks that index
        positions can translate absolute positions into the chunk's own.
        """
        inputs = {k: v.to(self.input_device) for k, v in inputs.items()}
        start = 0 if past_key_values is None else self.architecture.kv_cache.length(past_key_values)
        with self._run_lock, self.starting_at(start), routed(self, inputs["attention_mask"], inputs):
            return self._hf["backbone"](
                **self.architecture.hf_kwargs(inputs), **self.cache_kwargs(past_key_values, use_cache),
                **kwargs,
            )

    def run_with_cache(  # type: ignore[override]  # takes a batch, not TransformerLens' *model_args
        self,
        batch: AudioBatch | dict[str, Tensor],
        *,
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = None,
        positions: Positions = None,
        return_type: str | None = "logits",
        device: str | torch.device | None = None,
    ) -> tuple[Tensor | None, ActivationCache]:
        """Run once and cache the hook activations; with ``positions``, only those positions.

        ``positions`` is a name (``"last"``, ``"attribute"``), an int, a list of them, or a
        ``(batch, k)`` index tensor; cached activations then have shape ``(batch, k, ...)``.
        Without ``names_filter`` every hook point is cached except the attention patterns
        (``attn.hook_pattern``), which are recomputed only when named. Encoder and projector
        hooks (``encoder.*``, ``projector.*``) have frames, not tokens: ``positions`` does not
        apply to them; they are cached whole when named, and left out of a filter's choice when
        ``positions`` is given.
        """
        index = None if positions is None else position_index(batch, positions)
        names = self._hook_names(names_filter)
        if index is not None and (names_filter is None or callable(names_filter)):
            # Encoder and projector activations have frames, not token positions: with
            # ``positions`` a filter selects among the decoder's hooks (name them to get them whole).
            names = [n for n in names if not is_audio_hook(n)]
        cache: dict[str, Tensor] = {}

        def save(act: Tensor, hook: HookPoint) -> None:
            assert hook.name is not None  # set by HookedRootModule.setup()
            if index is not None and not is_audio_hook(hook.name):
                local = torch.where(index >= 0, index - self.chunk_start, index)
                if hook.name.endswith(QUERY_AXIS_2):  # (batch, head, query, key): pick queries
                    act = gather_positions(act.transpose(1, 2), local).transpose(1, 2)
                else:
                    act = gather_positions(act, local)
            cache[hook.name] = act.detach().to(device) if device else act.detach()

        with self.hooks(fwd_hooks=[(n, save) for n in names]):
            logits = self.forward(batch, positions=positions, return_type=return_type)
        return logits, ActivationCache(cache, self)

    def _hook_names(self, names_filter: Any) -> list[str]:
        if names_filter is None:  # attention patterns cost a recomputation: only when named
            return [n for n in self.hook_dict if not n.endswith("hook_pattern")]
        if isinstance(names_filter, str):
            names_filter = [names_filter]
        if callable(names_filter):
            return [n for n in self.hook_dict if names_filter(n)]
        self.check_hook_names(names_filter)
        return list(names_filter)

    def check_hook_names(self, names: Sequence[str]) -> None:
        """Raise :class:`HookUnavailable` or :class:`UnknownHookError` (with close matches)
        for a name that is not one of this model's hook points."""
        for name in names:
            if name in self.hook_dict:
                continue
            if is_audio_hook(name):
                self._check_audio_hook(name)
            if name.endswith("hook_resid_mid") and self.architecture.resid_mid_unavailable:
                raise HookUnavailable(
                    f"{name}: {self.architecture.name} has no exact mid-residual "
                    f"({self.architecture.resid_mid_unavailable})"
                )
            if name.endswith(COMPONENT_HOOKS) and self._components_missing:
                raise HookUnavailable(f"{name}: {self.architecture.name} has no component hooks "
                                      f"({self._components_missing})")
            close = difflib.get_close_matches(name, list(self.hook_dict), n=3)
            hint = f"; did you mean {close}?" if close else f"; e.g. {list(self.hook_dict)[:4]}"
            raise UnknownHookError(f"unknown hook name {name!r}{hint}")

    def _check_audio_hook(self, name: str) -> None:
        """Raise the named error for an encoder or projector hook this model lacks."""
        if self._encoder_missing:
            raise HookUnavailable(f"{name}: {self.architecture.name} offers no encoder or projector hooks "
                                  f"({self._encoder_missing})")
        n = self.n_encoder_layers
        parts = name.split(".")
        if len(parts) == 4 and parts[1] == "blocks" and parts[2].isdigit() and parts[3] == "hook_resid_post":
            have = f"{n} encoder layers (0..{n - 1})" if n else "0 encoder layers (no encoder.blocks hooks)"
            raise EncoderLayerError(f"{name}: encoder layer {parts[2]} is out of range; "
                                    f"{self.architecture.name} has {have}; model.n_encoder_layers says how many")
        if name == "encoder.hook_embed" and n == 0:
            raise HookUnavailable(f"{name}: this {self.architecture.name} encoder has no transformer layers, so "
                                  "nothing separates its front end from its output; read encoder.hook_out")

    def _enable_hook_with_name(self, name: str, hook: Callable[..., Any], dir: Any) -> None:
        self.check_hook_names([name])
        # A hook that raises or returns the wrong shape or dtype is named (HookError).
        super()._enable_hook_with_name(name, checked_hook(name, hook) if dir == "fwd" else hook, dir)
