"""Checks every supported family must pass, each against a computation the library does not
make: the HF model's own logits and hidden states, its key/value cache, or a plain PyTorch hook
on the HF modules. ``test_families.py`` runs them on every tiny build; the remote-code doubles
run them too.

Each check takes a wrapped model with randomised norm gains (so a missing or doubled norm
shows), a left-padded batch of clips of different lengths, and the task.
"""

from __future__ import annotations

import pytest
import torch

import audiolens as al

ATOL = 2e-4
TOKEN_KEYS = ("input_ids", "position_ids", "inputs_embeds")


def randomize_norm_gains(hf_model: torch.nn.Module, seed: int = 1) -> None:
    """Give every norm's gain random values in [0.5, 1.5] (away from the identity). Norms are
    found by module name or class name (``ln_f`` is an ``RMSNorm``)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in hf_model.named_modules():
            weight = getattr(module, "weight", None)
            is_norm = "norm" in name.lower() or "norm" in type(module).__name__.lower()
            if is_norm and isinstance(weight, torch.Tensor) and weight.ndim == 1:
                weight.copy_(torch.rand(weight.shape, generator=gen) + 0.5)


def hf_lm(model) -> torch.nn.Module:
    """The HF module whose own forward gives the model's logits (the root for most families)."""
    return model.hf_model.get_submodule(model.architecture.causal_lm)


def hf_forward(model, inputs, **kw):
    inputs = model.architecture.hf_kwargs({k: v.to(model.device) for k, v in inputs.items()})
    with torch.no_grad():
        return hf_lm(model)(**inputs, **kw)


def lens_top_layer_equals_model_logits(model, batch, task):
    res = al.LogitLens(task).run(model, batch)
    logits = hf_forward(model, batch.inputs).logits[:, -1, list(res.label_token_ids)]
    torch.testing.assert_close(res.logits_at("last")[model.n_layers], logits.float().cpu(), atol=ATOL, rtol=1e-4)


def lens_lower_layers_equal_head_on_hidden_states(model, batch, task):
    res = al.LogitLens(task).run(model, batch)
    hidden = hf_forward(model, batch.inputs, output_hidden_states=True).hidden_states
    assert len(hidden) == model.n_layers + 1
    ids = list(res.label_token_ids)
    rows = torch.arange(len(batch))
    for p, where in enumerate(res.positions):
        pos = batch.position(where)
        for layer in range(model.n_layers):  # hidden_states[ℓ] is raw for ℓ < L
            with torch.no_grad():
                h = model.final_norm(hidden[layer][rows, pos])
                ref = hf_lm(model).get_output_embeddings()(h)[:, ids]
            torch.testing.assert_close(res.label_logits[layer, :, p], ref.float().cpu(), atol=ATOL, rtol=1e-4)


def audio_mask_equals_kv_reference(model, batch, task):
    """A prefix pass with a cache, then the last token alone with the audio keys removed from
    its 2-D attention mask."""
    masked = al.LogitLens(task).run(model, batch, [al.AudioMask()])
    inp = batch.inputs
    prefix = {k: (v[:, :-1] if k in TOKEN_KEYS or k == "attention_mask" else v) for k, v in inp.items()}
    cache = hf_forward(model, prefix, use_cache=True).past_key_values
    keep = inp["attention_mask"].clone()
    keep[batch.spans["audio"]] = 0
    step = {k: v[:, -1:] for k, v in inp.items() if k in TOKEN_KEYS}
    out = hf_forward(model, {**step, "attention_mask": keep}, past_key_values=cache)
    ref = out.logits[:, -1, list(masked.label_token_ids)]
    torch.testing.assert_close(masked.logits_at("last")[model.n_layers], ref.float().cpu(), atol=ATOL, rtol=1e-4)
    plain = al.LogitLens(task).run(model, batch)
    assert not torch.allclose(plain.logits_at("last")[-1], masked.logits_at("last")[-1])


def audio_mask_leaves_earlier_positions_identical(model, batch, task):
    """Every earlier token is bit-identical. Padding positions are left out: a family whose
    padding queries see every key masked may average over all keys, the last one included."""
    from audiolens.interventions import collect_hooks

    resid = lambda n: n.startswith("blocks.") and "resid" in n
    _, clean = model.run_with_cache(batch, names_filter=resid)
    with model.hooks(fwd_hooks=collect_hooks([al.AudioMask()], model, batch)):
        _, masked = model.run_with_cache(batch, names_filter=resid)
    # Padding positions carry no meaning (under eager attention their fully masked rows attend
    # uniformly to every key, the last one included): compare the real positions.
    real = batch.inputs["attention_mask"].bool()[:, :-1].to(model.device)
    for name in clean:
        assert torch.equal(masked[name][:, :-1][real], clean[name][:, :-1][real]), name


def enrich_equals_eq5(model, batch, task):
    src, tgt, scale = 0, model.n_layers, 0.7
    _, clean = model.run_with_cache(batch, positions="last")
    with model.hooks(fwd_hooks=al.interventions.collect_hooks(
            [al.Enrich(source_layer=src, scale=scale, target_layer=tgt)], model, batch)):
        _, enriched = model.run_with_cache(batch, positions="last")
    expected = clean[model.resid_name(tgt)] + scale * clean[model.resid_name(src)]
    torch.testing.assert_close(enriched[model.resid_name(tgt)], expected, atol=1e-5, rtol=1e-5)
    for layer in range(tgt):
        assert torch.equal(enriched[model.resid_name(layer)], clean[model.resid_name(layer)])


def run_many_equals_separate_runs(model, batch, task):
    lens = al.LogitLens(task)
    variants = {"none": [], "mask": [al.AudioMask()],
                "enrich": [al.Enrich(source_layer=0, scale=0.5, target_layer=model.n_layers)]}
    many = lens.run_many(model, batch, variants)
    for name, ivs in variants.items():
        alone = lens.run(model, batch, ivs)
        torch.testing.assert_close(many[name].label_logits, alone.label_logits, atol=ATOL, rtol=1e-4)


def padded_rows_equal_rows_alone(model, clips, task, labels):
    prompt = task.prompt("P3")
    lens = al.LogitLens(task)
    batch = model.prepare(clips, 16000, prompt, labels=labels)
    if batch.spans["audio"].sum(1).unique().numel() > 1:  # families with a fixed count never pad
        assert bool((batch.inputs["attention_mask"] == 0).any()), "clips of different lengths must pad"
    together = lens.run(model, batch)
    for i, clip in enumerate(clips):
        alone = lens.run(model, model.prepare([clip], 16000, prompt, labels=[labels[i]]))
        torch.testing.assert_close(together.label_logits[:, i], alone.label_logits[:, 0], atol=ATOL, rtol=1e-4)


def resid_mid_is_exact(model, batch, task):
    """Read: mid - pre equals m · (the attention module's own output), captured by a plain
    PyTorch hook. Write: setting mid := pre equals zeroing the attention output."""
    layer = model.layers[1 if model.n_layers > 1 else 0]
    block = 1 if model.n_layers > 1 else 0
    attn = layer.get_submodule(model.architecture.attention)
    seen = []
    handle = attn.register_forward_hook(lambda mod, args, out: seen.append(out[0].detach()))
    try:
        _, cache = model.run_with_cache(batch, names_filter=[f"blocks.{block}.hook_resid_pre",
                                                             f"blocks.{block}.hook_resid_mid"])
    finally:
        handle.remove()
    m = model.cfg.residual_multiplier
    diff = cache[f"blocks.{block}.hook_resid_mid"] - cache[f"blocks.{block}.hook_resid_pre"]
    torch.testing.assert_close(diff, m * seen[0], atol=1e-5, rtol=1e-4)

    def no_attention(mod, args, out):
        return (torch.zeros_like(out[0]), *out[1:])

    handle = attn.register_forward_hook(no_attention)
    try:
        ref = hf_forward(model, batch.inputs).logits[:, -1]
    finally:
        handle.remove()
    pre = {}

    def keep_pre(act, hook):
        pre["x"] = act

    with torch.no_grad():
        edited = model.run_with_hooks(batch, fwd_hooks=[
            (f"blocks.{block}.hook_resid_pre", keep_pre),
            (f"blocks.{block}.hook_resid_mid", lambda act, hook: pre["x"].clone()),
        ])[:, -1]
    torch.testing.assert_close(edited, ref, atol=ATOL, rtol=1e-4)


def component_hooks_reproduce_the_residual(model, batch, task):
    """resid_mid = resid_pre + attn_out, resid_post = resid_mid + mlp_out, and the heads of
    attn.hook_z through the output projection (scaled by m) sum to attn_out."""
    if model.architecture.components_unavailable:
        return
    block = model.n_layers - 1
    names = [f"blocks.{block}.{n}" for n in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out",
                                              "hook_resid_post", "attn.hook_z")]
    has_mid = model.architecture.resid_mid_unavailable is None
    if has_mid:
        names.append(f"blocks.{block}.hook_resid_mid")
    _, c = model.run_with_cache(batch, names_filter=names)
    get = lambda n: c[f"blocks.{block}.{n}"]
    torch.testing.assert_close(get("hook_resid_pre") + get("hook_attn_out") + get("hook_mlp_out"),
                               get("hook_resid_post"), atol=1e-5, rtol=1e-5)
    if has_mid:
        torch.testing.assert_close(get("hook_resid_pre") + get("hook_attn_out"), get("hook_resid_mid"),
                                   atol=1e-5, rtol=1e-5)
    attn = model.layers[block].get_submodule(model.architecture.attention)
    proj = attn.get_submodule(model.architecture.attn_output_proj)
    z = get("attn.hook_z")  # (batch, seq, head, d_head)
    w = proj.weight.reshape(proj.weight.shape[0], z.shape[2], z.shape[3])  # (d_model, head, d_head)
    per_head = torch.einsum("bshd,mhd->bshm", z, w)
    total = per_head.sum(2) + (proj.bias if proj.bias is not None else 0)
    torch.testing.assert_close(model.cfg.residual_multiplier * total, get("hook_attn_out"), atol=1e-5, rtol=1e-4)


def editing_components_changes_the_forward_as_said(model, batch, task):
    """Zeroing head 0 in attn.hook_z equals zeroing its slice of the output projection's input
    with a plain PyTorch hook; adding v to hook_mlp_out adds v to resid_post."""
    if model.architecture.components_unavailable:
        return
    block = 0
    attn = model.layers[block].get_submodule(model.architecture.attention)
    proj = attn.get_submodule(model.architecture.attn_output_proj)

    def zero_head(act, hook):
        act = act.clone()
        act[:, :, 0] = 0
        return act

    with torch.no_grad():
        edited = model.run_with_hooks(batch, fwd_hooks=[(f"blocks.{block}.attn.hook_z", zero_head)])[:, -1]
    _, heads = model.run_with_cache(batch, names_filter=f"blocks.{block}.attn.hook_z", positions="last")
    d_head = heads[f"blocks.{block}.attn.hook_z"].shape[-1]

    def zero_slice(mod, args):
        x = args[0].clone()
        x[..., :d_head] = 0
        return (x,)

    handle = proj.register_forward_pre_hook(zero_slice)
    try:
        ref = hf_forward(model, batch.inputs).logits[:, -1]
    finally:
        handle.remove()
    torch.testing.assert_close(edited, ref, atol=ATOL, rtol=1e-4)

    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    _, clean = model.run_with_cache(batch, names_filter=f"blocks.{block}.hook_resid_post")
    with model.hooks(fwd_hooks=[(f"blocks.{block}.hook_mlp_out", lambda act, hook: act + v)]):
        _, moved = model.run_with_cache(batch, names_filter=f"blocks.{block}.hook_resid_post")
    name = f"blocks.{block}.hook_resid_post"
    torch.testing.assert_close(moved[name] - clean[name], v.expand_as(clean[name]), atol=1e-4, rtol=1e-4)


def eager_attentions(model, inputs):
    """HF's own attention weights per layer, ``output_attentions=True`` under eager attention
    (the kernel is put back afterwards)."""
    import logging

    lm = hf_lm(model)
    configs = {id(c): (c, c._attn_implementation) for m in lm.modules()
               if hasattr(c := getattr(m, "config", None), "_attn_implementation")}
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        for c, _ in configs.values():
            c._attn_implementation = "eager"
        return hf_forward(model, inputs, output_attentions=True).attentions
    finally:
        for c, kernel in configs.values():
            c._attn_implementation = kernel


def attention_to_spans_equals_output_attentions(model, batch, task):
    """Shares by span at the last token and over the question equal shares summed by hand from
    HF's ``output_attentions`` (eager), while the run itself keeps its kernel."""
    from audiolens.analysis.attention import span_partition

    try:
        model.run_with_cache(batch, names_filter=["blocks.0.attn.hook_pattern"])
    except al.HookUnavailable:  # a family without patterns says so, here too
        with pytest.raises(al.HookUnavailable):
            al.attention_to_spans(model, batch)
        pytest.skip(f"{model.architecture.name} offers no attention weights: attention_to_spans refuses, as checked")
    attentions = eager_attentions(model, batch.inputs)
    assert len(attentions) == model.n_layers
    names, member = span_partition(batch)
    assert bool((member.sum(-1) == (~batch.span("padding")).long()).all())  # a partition of real tokens
    # A span of queries too: the question where the batch has one (Voxtral's real processor
    # renders it before the audio, so its batches name none), else the answer prefix.
    for queries in ("last", "question" if "question" in batch.spans else "prefix"):
        att = al.attention_to_spans(model, batch, queries=queries)
        assert att.spans == names
        index = al.batch.position_index(batch, queries)
        for layer, weights in enumerate(attentions):
            ref = torch.zeros(len(batch), weights.shape[1], len(names))
            for r in range(len(batch)):
                rows = index[r][index[r] >= 0].to(weights.device)
                by_span = weights[r][:, rows].float().cpu() @ member[r].float()  # (head, q, span)
                ref[r] = by_span.mean(1)
            torch.testing.assert_close(att.share[layer], ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(att.share.sum(-1), torch.ones_like(att.share.sum(-1)), atol=1e-5, rtol=0)


def head_ablation_of_a_whole_layer_removes_its_attention(model, batch, task):
    """Zeroing every head of a block equals a plain PyTorch hook that removes the attention
    module's output (leaving the output projection's bias, which no head writes); HeadScale 1.0
    is bit-identical to no intervention; both backends agree."""
    if model.architecture.components_unavailable:
        with pytest.raises(al.HookUnavailable):
            al.LogitLens(task).run(model, batch, [al.HeadAblation({1: [0]})])
        return
    from audiolens.interventions import head_count

    block = model.n_layers - 1
    attn = model.layers[block].get_submodule(model.architecture.attention)
    proj = attn.get_submodule(model.architecture.attn_output_proj)

    def no_attention(mod, args, out):
        kept = torch.zeros_like(out[0]) if proj.bias is None else proj.bias.expand_as(out[0]).clone()
        return (kept, *out[1:])

    handle = attn.register_forward_hook(no_attention)
    try:
        ref = hf_forward(model, batch.inputs).logits[:, -1]
    finally:
        handle.remove()
    lens = al.LogitLens(task, positions=("last",))
    ids = list(lens.run(model, batch).label_token_ids)
    ablation = al.HeadAblation({block + 1: list(range(head_count(model, block + 1)))})
    res = lens.run(model, batch, [ablation])
    torch.testing.assert_close(res.logits_at("last")[model.n_layers], ref[:, ids].float().cpu(), atol=ATOL, rtol=1e-4)
    assert not torch.allclose(res.label_logits, lens.run(model, batch).label_logits)
    assert torch.equal(lens.run(model, batch, [al.HeadScale({1: [0], block + 1: [1]}, factor=1.0)]).label_logits,
                       lens.run(model, batch).label_logits)
    for iv in (ablation, al.HeadScale({1: [0, 1]}, factor=3.0)):
        torch.testing.assert_close(lens.run(model, batch, [iv], backend="nnsight").label_logits,
                                   lens.run(model, batch, [iv]).label_logits, atol=1e-5, rtol=1e-5)


CHECKS = [
    lens_top_layer_equals_model_logits,
    lens_lower_layers_equal_head_on_hidden_states,
    audio_mask_equals_kv_reference,
    audio_mask_leaves_earlier_positions_identical,
    enrich_equals_eq5,
    run_many_equals_separate_runs,
    component_hooks_reproduce_the_residual,
    editing_components_changes_the_forward_as_said,
    attention_to_spans_equals_output_attentions,
    head_ablation_of_a_whole_layer_removes_its_attention,
]


def run_formats_equals_run_many(model, clips, task, labels):
    """Sharing the audio prefix across prompt formats changes no number."""
    lens = al.LogitLens(task)
    batches = {f: model.prepare(clips, 16000, task.prompt(f), labels=labels) for f in ("P1", "P2", "P3")}
    variants = {"none": [], "mask": [al.AudioMask()],
                "enrich": [al.Enrich(source_layer=0, scale=0.5, target_layer=model.n_layers)]}
    assert al.batch.shared_prefix(list(batches.values())) > 0
    shared = lens.run_formats(model, batches, variants)
    for f, batch in batches.items():
        alone = lens.run_many(model, batch, variants)
        for name in variants:
            torch.testing.assert_close(shared[f][name].label_logits, alone[name].label_logits, atol=ATOL, rtol=1e-4)


def nnsight_equals_hooks(model, batch, task):
    """The nnsight backend gives the hook backend's numbers: plain, masked, enriched, custom."""
    lens = al.LogitLens(task)

    def halve_audio(act, hook, batch):
        return act * torch.where(batch.span("audio")[..., None].to(act.device), 0.5, 1.0)

    custom = al.HookIntervention(model.resid_name(1), halve_audio)
    for ivs in ([], [al.AudioMask()], [al.Enrich(source_layer=0, scale=0.5, target_layer=model.n_layers)], [custom]):
        a = lens.run(model, batch, ivs)
        b = lens.run(model, batch, ivs, backend="nnsight")
        torch.testing.assert_close(b.label_logits, a.label_logits, atol=1e-5, rtol=1e-5)
    variants = {"none": [], "mask": [al.AudioMask()]}
    many = lens.run_many(model, batch, variants, backend="nnsight")
    torch.testing.assert_close(many["mask"].label_logits, lens.run(model, batch, [al.AudioMask()]).label_logits,
                               atol=ATOL, rtol=1e-4)


# --------------------------------------------------------------------- the audio path
AUDIO_HOOKS = ("encoder.hook_embed", "encoder.hook_out", "projector.hook_out")


def refuses_encoder_hooks(model, batch) -> bool:
    """For a family that offers no encoder hooks: every one of them raises
    :class:`HookUnavailable` naming the family and its reason (then True); else False."""
    if not model.encoder_missing:
        return False
    assert model.n_encoder_layers == 0
    for name in (*AUDIO_HOOKS, "encoder.blocks.0.hook_resid_post"):
        with pytest.raises(al.HookUnavailable, match=model.architecture.name):
            model.run_with_cache(batch, names_filter=[name])
    with pytest.raises(al.HookUnavailable, match="EncoderLens"):
        al.EncoderLens().run(model, batch)
    return True


def hf_audio_reference(model, batch, edit=None):
    """The audio path's values during the HF model's own forward, read by plain PyTorch hooks on
    the HF modules: the first encoder layer's input, every layer's output, the tower's output
    and the projector's output. ``edit(name, value)`` may return a replacement for a value."""
    seen, handles = {}, []

    def out_hook(name):
        def hook(mod, args, out):
            hidden = out if isinstance(out, torch.Tensor) else (
                out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0])
            seen[name] = hidden.detach().clone()
            new = edit(name, hidden) if edit else None
            if new is None:
                return None
            if isinstance(out, torch.Tensor):
                return new
            if hasattr(out, "last_hidden_state"):
                out.last_hidden_state = new
                return out
            return (new, *out[1:])
        return hook

    hf = model.hf_model
    arch = model.architecture
    layers = hf.get_submodule(arch.encoder_layers)
    def embed_hook(mod, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        seen["embed"] = hidden.detach().clone()
        new = edit("embed", hidden) if edit else None
        if new is None:
            return None
        return ((new, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": new})

    if len(layers):
        handles.append(layers[0].register_forward_pre_hook(embed_hook, with_kwargs=True))
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(out_hook(f"layer{i}")))
    handles.append(hf.get_submodule(arch.encoder_output or arch.audio_encoder).register_forward_hook(out_hook("out")))
    handles.append(hf.get_submodule(arch.projector).register_forward_hook(out_hook("projector")))
    try:
        logits = hf_forward(model, batch.inputs).logits
    finally:
        for h in handles:
            h.remove()
    return seen, logits


def encoder_hooks_equal_hf_layer_outputs(model, batch, task):
    """Every encoder and projector hook equals the HF module's own value during a normal
    forward (plain PyTorch hooks), and names out of range raise named errors."""
    if refuses_encoder_hooks(model, batch):
        return
    n = model.n_encoder_layers
    assert n == len(model.hf_model.get_submodule(model.architecture.encoder_layers)) > 0
    ref, _ = hf_audio_reference(model, batch)
    _, cache = model.run_with_cache(batch, names_filter=lambda name: name.startswith(("encoder.", "projector.")))
    assert set(cache.keys()) == {*AUDIO_HOOKS, *(f"encoder.blocks.{i}.hook_resid_post" for i in range(n))}

    def same(name, theirs):
        ours = cache[name]
        if model.architecture.encoder_packed:  # the HF tower holds every clip's frames on one axis
            ours = ours[batch.frame_mask(name).to(ours.device)]
        torch.testing.assert_close(ours.reshape(theirs.shape), theirs, atol=0, rtol=0)

    same("encoder.hook_embed", ref["embed"])
    for i in range(n):
        same(f"encoder.blocks.{i}.hook_resid_post", ref[f"layer{i}"])
    same("encoder.hook_out", ref["out"])
    same("projector.hook_out", ref["projector"])
    # The batch's frame axes fit the activations.
    for name in cache:
        assert batch.frame_mask(name).shape == cache[name].shape[:2], name
        assert batch.frame_seconds(name).shape == cache[name].shape[:2], name
    with pytest.raises(al.EncoderLayerError, match="out of range"):
        model.run_with_cache(batch, names_filter=[f"encoder.blocks.{n}.hook_resid_post"])


def frames_are_the_models_own(model, batch, task):
    """Each row's valid projector tokens are the audio rows the decoder sees (the processor's
    placeholder count), or fewer where the model also reads the window's silence as audio;
    the encoder's lengths equal the model's own length function where it has one."""
    if refuses_encoder_hooks(model, batch):
        return
    tokens = batch.frame_mask("projector.hook_out").sum(1)
    span = batch.spans["audio"].sum(1)
    if model.architecture.audio_frames.feature_mask:
        assert torch.equal(tokens, span)
    else:
        assert bool((tokens <= span).all()) and bool((tokens < span).any())
    lengths = getattr(model.audio_encoder, "_get_feat_extract_output_lengths", None)
    mask_key = model.architecture.audio_frames.feature_mask
    if lengths is not None and mask_key:
        encoder, out = lengths(batch.inputs[mask_key].sum(-1))
        assert torch.equal(batch.frame_mask("encoder.hook_embed").sum(1), encoder)
        assert torch.equal(batch.frame_mask("encoder.hook_out").sum(1), out)
    seconds = batch.frame_seconds("projector.hook_out")
    assert bool(torch.isnan(seconds[~batch.frame_mask("projector.hook_out")]).all())
    step = seconds[0, 1] - seconds[0, 0]
    torch.testing.assert_close(float(step), 1 / model.architecture.tokens_per_second, atol=1e-6, rtol=0)


def projector_out_equals_decoder_input_at_audio(model, batch, task):
    """``projector.hook_out`` at each row's audio tokens is ``blocks.0.hook_resid_pre`` at the
    audio span's positions."""
    if refuses_encoder_hooks(model, batch):
        return
    _, cache = model.run_with_cache(batch, names_filter=["projector.hook_out", "blocks.0.hook_resid_pre"])
    proj, pre = cache["projector.hook_out"], cache["blocks.0.hook_resid_pre"]
    for row in range(len(batch)):
        where = batch.spans["audio"][row].nonzero().flatten()
        torch.testing.assert_close(proj[row, : len(where)], pre[row, where.to(pre.device)], atol=0, rtol=0)


def zeroed_projector_equals_zeroed_audio_embeddings(model, batch, task):
    """Zeroing ``projector.hook_out`` gives the logits of the HF model run on ``inputs_embeds``
    whose audio rows were zeroed by hand (no audio features given)."""
    if refuses_encoder_hooks(model, batch):
        return
    with torch.no_grad():
        edited = model.run_with_hooks(batch, fwd_hooks=[("projector.hook_out", lambda act, hook: torch.zeros_like(act))])
        embeds = model.hf_model.get_input_embeddings()(batch.inputs["input_ids"].to(model.input_device))
        embeds = embeds.masked_fill(batch.spans["audio"][..., None].to(embeds.device), 0.0)
        inputs = {"inputs_embeds": embeds, "attention_mask": batch.inputs["attention_mask"],
                  "position_ids": batch.inputs["position_ids"]}
        ref = hf_forward(model, inputs).logits
    torch.testing.assert_close(edited[:, -1], ref[:, -1], atol=ATOL, rtol=1e-4)
    plain = hf_forward(model, batch.inputs).logits
    assert not torch.allclose(plain[:, -1], ref[:, -1], atol=1e-3)


def encoder_edit_propagates_like_a_plain_hook(model, batch, task):
    """Scaling ``encoder.hook_embed``, ``encoder.blocks.0.hook_resid_post`` or
    ``encoder.hook_out`` equals scaling that HF module's input or output with a plain PyTorch
    hook: the edit reaches the decoder's logits."""
    if refuses_encoder_hooks(model, batch):
        return
    plain = hf_forward(model, batch.inputs).logits
    for name, site in (("encoder.hook_embed", "embed"), ("encoder.blocks.0.hook_resid_post", "layer0"),
                       ("encoder.hook_out", "out")):
        with torch.no_grad():
            ours = model.run_with_hooks(batch, fwd_hooks=[(name, lambda act, hook: act * 0.5)])
        _, ref = hf_audio_reference(model, batch, edit=lambda n, h, site=site: h * 0.5 if n == site else None)
        torch.testing.assert_close(ours[:, -1], ref[:, -1], atol=ATOL, rtol=1e-4)
        assert not torch.allclose(plain[:, -1], ref[:, -1], atol=1e-4), name


def encoder_lens_equals_stopped_encoder(model, batch, task):
    """EncoderLens at the last encoder layer is the plain run; at ℓ < n it equals the HF model
    run with the last encoder layer's output replaced (plain PyTorch hook) by layer ℓ's output
    (or, at ℓ = 0, the first layer's input) from a clean forward; on nnsight too."""
    if refuses_encoder_hooks(model, batch):
        return
    res = al.EncoderLens(task).run(model, batch)
    n = model.n_encoder_layers
    assert res.lens.label_logits.shape[0] == n + 1
    ids = list(res.lens.label_token_ids)
    clean, logits = hf_audio_reference(model, batch)
    torch.testing.assert_close(res.logits_at("last")[n], logits[:, -1, ids].float().cpu(), atol=ATOL, rtol=1e-4)
    for layer in range(n):
        source = clean["embed"] if layer == 0 else clean[f"layer{layer - 1}"]
        _, stopped = hf_audio_reference(model, batch, edit=lambda name, h, s=source: s if name == f"layer{n - 1}" else None)
        torch.testing.assert_close(res.logits_at("last")[layer], stopped[:, -1, ids].float().cpu(), atol=ATOL, rtol=1e-4)
    other = al.EncoderLens(task, layers_per_pass=1).run(model, batch, backend="nnsight")
    torch.testing.assert_close(other.lens.label_logits, res.lens.label_logits, atol=1e-5, rtol=1e-5)


def encoder_lens_composes_with_audio_mask(model, batch, task):
    """With AudioMask, EncoderLens's last layer equals LogitLens with the same mask, and layer 0
    equals a hand-made reference: the HF model's prefix pass with the encoder stopped at its
    input (plain PyTorch hook), then the last token alone with the audio keys removed from its
    2-D attention mask."""
    if refuses_encoder_hooks(model, batch):
        return
    masked = al.EncoderLens(task).run(model, batch, [al.AudioMask()])
    lens = al.LogitLens(task).run(model, batch, [al.AudioMask()])
    torch.testing.assert_close(masked.logits_at("last")[-1], lens.logits_at("last")[-1], atol=ATOL, rtol=1e-4)
    n = model.n_encoder_layers
    clean, _ = hf_audio_reference(model, batch)
    last_layer = model.hf_model.get_submodule(model.architecture.encoder_layers)[n - 1]
    handle = last_layer.register_forward_hook(
        lambda mod, args, out: clean["embed"] if isinstance(out, torch.Tensor) else (clean["embed"], *out[1:]))
    inp = batch.inputs
    prefix = {k: (v[:, :-1] if k in TOKEN_KEYS or k == "attention_mask" else v) for k, v in inp.items()}
    try:
        cache = hf_forward(model, prefix, use_cache=True).past_key_values
    finally:
        handle.remove()
    keep = inp["attention_mask"].clone()
    keep[batch.spans["audio"]] = 0
    step = {k: v[:, -1:] for k, v in inp.items() if k in TOKEN_KEYS}
    ref = hf_forward(model, {**step, "attention_mask": keep}, past_key_values=cache).logits[:, -1]
    ids = list(masked.lens.label_token_ids)
    torch.testing.assert_close(masked.logits_at("last")[0], ref[:, ids].float().cpu(), atol=ATOL, rtol=1e-4)
    plain = al.EncoderLens(task).run(model, batch)
    assert not torch.allclose(plain.logits_at("last")[0], masked.logits_at("last")[0])


def nnsight_encoder_hooks_equal_hooks(model, batch, task):
    """Reading and editing every encoder and projector hook gives the same numbers on both
    backends."""
    if refuses_encoder_hooks(model, batch):
        return
    from audiolens.backends import execute

    names = [*AUDIO_HOOKS[:1], *(f"encoder.blocks.{i}.hook_resid_post" for i in range(model.n_encoder_layers)),
             *AUDIO_HOOKS[1:]]
    out = {}
    for backend in ("hooks", "nnsight"):
        seen: dict[str, torch.Tensor] = {}

        def keep(act, hook, seen=seen):
            seen[hook.name] = act.detach().clone()

        def halve(act, hook):
            return act * 0.5

        result = execute(model, batch.inputs, [(n, halve) for n in names] + [(n, keep) for n in names],
                         backend=backend)
        out[backend] = (seen, result.last_hidden_state[:, -1])
    for name in names:
        torch.testing.assert_close(out["nnsight"][0][name], out["hooks"][0][name], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out["nnsight"][1], out["hooks"][1], atol=1e-5, rtol=1e-5)


ENCODER_CHECKS = [
    encoder_hooks_equal_hf_layer_outputs,
    frames_are_the_models_own,
    projector_out_equals_decoder_input_at_audio,
    zeroed_projector_equals_zeroed_audio_embeddings,
    encoder_edit_propagates_like_a_plain_hook,
    encoder_lens_equals_stopped_encoder,
    encoder_lens_composes_with_audio_mask,
    nnsight_encoder_hooks_equal_hooks,
]
