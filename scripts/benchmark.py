"""Time the one-pass logit lens against a plain forward pass and the per-layer re-run scheme.

All methods run in one process on the same model and batch, interleaved round by round, and
are reported as ratios to the plain HF forward pass (these machines are noisy: compare within
one run, never across runs).

    python scripts/benchmark.py [--layers 8] [--vocab 32000] [--seconds 15] [--batch 4] [--rounds 3]

Methods:
  hf_forward       the model's own forward: full-vocabulary logits at every position
  lens             LogitLens.run: one decoder pass, residuals kept at 2 positions, label rows only
  hidden_states    one forward with output_hidden_states=True, then norm + head by hand
  per_layer_rerun  the original code's scheme: one hidden-states pass, then one full forward
                   per layer with that layer's residual written into the last layer's output
  lens + probes    the lens pass with the probes' reader on every layer (run_probes collects
                   this way): the mean residual over each clip's audio tokens, kept on the CPU

Peers on the same model and batch (``--peers``): an nnsight trace of the backbone saving the
last-token residual of every layer, TransformerLens's TransformerBridge with a residual cache,
and the audiolens lens on the nnsight backend. Every peer's numbers are checked against the lens
before timing.

A second table times six intervention variants that differ only at the last token (plain,
audio mask, four enrichment scales) run one by one versus LogitLens.run_many, which runs the
prefix once and reuses its key/value cache.

A third table times the paper's whole protocol per clip, in units of one plain forward of one
prompt: three prompt formats x {plain, audio mask} plus a 6-λ x 6-method enrichment sweep under
P3 (the selected layer and five random-layer seeds), (a) as the study ran it before, one
``run_many`` per format and one per λ with one single-token step per variant, and (b) with
``run_formats``: one pass over the shared audio prefix, each format's own tokens, and the
variants batched into a few single-token steps (variants that change nothing, such as λ = 0,
come from that pass itself). ``Study`` runs (b): its probe clips first, to choose ℓ̄, then the
test clips with the sweep in the same pass.

A fourth table times the encoder lens (``--encoder-layers`` audio encoder layers): EncoderLens,
one forward over n + 1 copies of the batch (one decoder pass per encoder layer, batched), versus
stopping the encoder with a plain PyTorch hook and running the HF forward once per layer.
A fifth table (``--no-listening`` skips it) times the listening analyses per clip: attention by
span read during a lens pass against the lens pass alone and against reading the recomputed eager
patterns, and the audio-head finder (every head ablated at the answer token).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import warnings

import numpy as np
import torch

import audiolens as al
from audiolens.analysis.probes import PooledActivations, probe_sites
from audiolens.models.tiny.qwen2_audio import build_processor, tiny_qwen2_audio_config


def build(layers: int, vocab: int, seconds: int, d_model: int, encoder_layers: int = 2) -> al.HookedAudioLM:
    from transformers import Qwen2AudioForConditionalGeneration

    processor = build_processor(window_seconds=seconds)
    config = tiny_qwen2_audio_config(processor, n_layers=layers, d_model=d_model, n_heads=8,
                                     audio_layers=encoder_layers)
    config.text_config.vocab_size = vocab  # rows past the tokenizer's ids are never produced
    torch.manual_seed(0)
    return al.HookedAudioLM.from_hf(Qwen2AudioForConditionalGeneration(config).eval(), processor)


def per_layer_rerun(model: al.HookedAudioLM, batch: al.AudioBatch, ids: list[int]) -> torch.Tensor:
    hf = model.hf_model
    hidden = hf(**batch.inputs, output_hidden_states=True).hidden_states
    last_layer = model.layers[-1]
    out = []
    for h in hidden[:-1]:
        def overwrite(module, args, output, h=h):
            output = output.clone()
            output[:, -1] = h[:, -1]
            return output

        handle = last_layer.register_forward_hook(overwrite)
        try:
            out.append(hf(**batch.inputs).logits[:, -1, ids])
        finally:
            handle.remove()
    out.append(hf(**batch.inputs).logits[:, -1, ids])
    return torch.stack(out)


def hidden_states_lens(model: al.HookedAudioLM, batch: al.AudioBatch, ids: list[int]) -> torch.Tensor:
    hidden = model.hf_model(**batch.inputs, output_hidden_states=True).hidden_states
    W = model.W_U[ids]
    normed = [model.final_norm(h[:, -1]) for h in hidden[:-1]] + [hidden[-1][:, -1]]
    return torch.stack([h @ W.T for h in normed])


def nnsight_lens(model: al.HookedAudioLM, batch: al.AudioBatch, ids: list[int]) -> torch.Tensor:
    """A peer: an nnsight trace of the backbone that saves every layer's last-token residual."""
    from nnsight import NNsight

    net = model.__dict__.setdefault("_bench_nnsight", NNsight(model.backbone))
    saved = []
    with net.trace(**batch.inputs):
        layers = net.language_model.layers
        saved.append(layers[0].input[:, -1].save())
        for i in range(model.n_layers):
            saved.append(layers[i].output[:, -1].save())
    W = model.W_U[ids]
    return torch.stack([model.final_norm(h) @ W.T for h in saved])


def bridge_lens(bridge, batch: al.AudioBatch, model: al.HookedAudioLM, ids: list[int]) -> torch.Tensor:
    """A peer: TransformerLens's TransformerBridge with a residual-stream cache."""
    inputs = dict(batch.inputs)
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(model.n_layers)]
    _, cache = bridge.run_with_cache(inputs.pop("input_ids"), names_filter=lambda n: n in names, **inputs)
    W = model.W_U[ids]
    return torch.stack([model.final_norm(cache[n][:, -1]) @ W.T for n in names])


def build_bridge(model: al.HookedAudioLM):
    import copy
    import tempfile

    from transformer_lens.model_bridge import TransformerBridge

    folder = tempfile.mkdtemp()
    model.hf_model.save_pretrained(folder)
    model.processor.save_pretrained(folder)
    return TransformerBridge.boot_transformers(
        folder, hf_model=copy.deepcopy(model.hf_model), tokenizer=copy.deepcopy(model.tokenizer))


def encoder_per_layer(model: al.HookedAudioLM, batch: al.AudioBatch, ids: list[int]) -> torch.Tensor:
    """The naive encoder lens: a clean forward keeps every encoder layer's output, then one HF
    forward per layer with the last encoder layer's output replaced by it (plain PyTorch hook)."""
    layers = model.encoder_layers
    seen = []
    handles = [layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))]
    handles += [layer.register_forward_hook(lambda m, a, out: seen.append(out)) for layer in layers]
    try:
        plain = model.hf_model(**batch.inputs).logits[:, -1, ids]
    finally:
        for h in handles:
            h.remove()
    out = []
    for h in seen[:-1]:
        handle = layers[-1].register_forward_hook(lambda m, a, o, h=h: h)
        try:
            out.append(model.hf_model(**batch.inputs).logits[:, -1, ids])
        finally:
            handle.remove()
    return torch.stack([*out, plain])


def timed(methods: dict, rounds: int) -> dict[str, float]:
    """Median seconds per method, interleaved round by round after one warm-up each."""
    times: dict[str, list[float]] = {k: [] for k in methods}
    for fn in methods.values():
        fn()
    for _ in range(rounds):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def protocol(model: al.HookedAudioLM, clips, labels, rounds: int) -> dict[str, float]:
    """Seconds of the whole per-clip protocol, before and with the shared audio prefix."""
    task = al.sakura_task("gender")
    batches = {f: model.prepare(clips, 16000, task.prompt(f), labels=labels) for f in ("P1", "P2", "P3")}
    lens = al.LogitLens(task, positions=("last",))
    main = {"none": [], "audio_mask": [al.AudioMask()]}
    L, n = model.n_layers, len(clips)
    src = max(0, L - 5 - 1)
    candidates = list(range(L - 5 + 1)) or [0]
    scales = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
    draws = {s: np.random.default_rng(s).choice(candidates, size=n) for s in range(5)}
    per_scale = {scale: {(scale, -1): [al.Enrich(src, scale, gap=min(5, L - src))]} |
                 {(scale, s): [al.Enrich(draws[s], scale, gap=min(5, L - int(draws[s].max())))] for s in range(5)}
                 for scale in scales}
    sweep = {k: v for d in per_scale.values() for k, v in d.items()}

    old = dataclasses.replace(lens, variants_per_step=1)  # one step per variant, as before

    def before():
        out = {f: old.run_many(model, b, main) for f, b in batches.items()}
        out["sweep"] = {k: r for scale in scales for k, r in old.run_many(model, batches["P3"], per_scale[scale]).items()}
        return out

    def shared():
        return lens.run_formats(model, batches, main, extra={"P3": sweep})

    a, b = before(), shared()
    for f in ("P1", "P2", "P3"):
        for k in main:
            torch.testing.assert_close(a[f][k].label_logits, b[f][k].label_logits, rtol=1e-4, atol=1e-4)
    for k in sweep:
        torch.testing.assert_close(a["sweep"][k].label_logits, b["P3"][k].label_logits, rtol=1e-4, atol=1e-4)
    return timed({"plain forward (P3)": lambda: model.hf_model(**batches["P3"].inputs).logits,
                  "protocol, before": before, "protocol, run_formats": shared}, rounds)


def listening(model: al.HookedAudioLM, batch: al.AudioBatch, rounds: int) -> dict[str, float]:
    """Seconds of a lens pass alone and with attention by span read in it (the kernel's own
    query/key states, last-token rows only), of attention by span from the recomputed eager
    patterns (attn.hook_pattern), and of the audio-head finder (one pass plus a step per layer)."""
    from audiolens.analysis.attention import SpanAttentionRecorder

    task = al.sakura_task("gender")
    lens = al.LogitLens(task, positions=("last",))

    def with_spans():
        rec = SpanAttentionRecorder(model, batch)
        with rec.recording():
            lens.run(model, batch)
        return rec.result()

    def from_patterns():
        names = [f"blocks.{i}.attn.hook_pattern" for i in range(model.n_layers)]
        _, cache = model.run_with_cache(batch, names_filter=names, positions="last", return_type=None)
        return cache

    # Both readings agree before either is timed.
    att, cache = with_spans(), from_patterns()
    audio = batch.span("audio").float()
    for i in range(model.n_layers):
        ref = (cache[f"blocks.{i}.attn.hook_pattern"][:, :, 0].float() * audio[:, None]).sum(-1)
        torch.testing.assert_close(att.of("audio")[i], ref, rtol=1e-4, atol=1e-5)
    return timed({"plain forward": lambda: model.hf_model(**batch.inputs).logits,
                  "lens (last token)": lambda: lens.run(model, batch),
                  "lens + span attention": with_spans,
                  "span attention, eager patterns": from_patterns,
                  "find_audio_heads": lambda: al.find_audio_heads(model, batch, task, progress=False)}, rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seconds", type=int, default=15, help="audio window (25 tokens per second)")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", action="store_true", help="also time nnsight and TransformerBridge")
    ap.add_argument("--no-protocol", action="store_true", help="skip the whole-protocol table")
    ap.add_argument("--encoder-layers", type=int, default=4, help="audio encoder layers (encoder lens table)")
    ap.add_argument("--no-listening", action="store_true", help="skip the listening table")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)

    model = build(args.layers, args.vocab, args.seconds, args.d_model, args.encoder_layers)
    task = al.sakura_task("gender")
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, args.seconds * 16000).astype(np.float32) for _ in range(args.batch)]
    batch = model.prepare(clips, 16000, task.prompt("P3"), labels=["male", "female"] * (args.batch // 2) + ["male"] * (args.batch % 2))
    lens = al.LogitLens(task)
    ids = al.label_token_ids(model.tokenizer, task.labels)

    methods = {
        "hf_forward": lambda: model.hf_model(**batch.inputs).logits,
        "lens": lambda: lens.run(model, batch),
        "hidden_states": lambda: hidden_states_lens(model, batch, ids),
        "per_layer_rerun": lambda: per_layer_rerun(model, batch, ids),
        "lens + probes": lambda: lens.run(model, batch, interventions=[PooledActivations(probe_sites(model), "audio")]),
    }
    # Every method agrees on the numbers before any of them is timed.
    ref = lens.run(model, batch).label_logits[:, :, 0]
    torch.testing.assert_close(hidden_states_lens(model, batch, ids), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(per_layer_rerun(model, batch, ids), ref, rtol=1e-4, atol=1e-4)
    if args.peers:
        bridge = build_bridge(model)
        methods |= {
            "nnsight_trace": lambda: nnsight_lens(model, batch, ids),
            "tl_bridge_cache": lambda: bridge_lens(bridge, batch, model, ids),
            "lens, nnsight": lambda: lens.run(model, batch, backend="nnsight"),
        }
        torch.testing.assert_close(nnsight_lens(model, batch, ids), ref, rtol=1e-4, atol=1e-4)
        real = batch.inputs["attention_mask"][:, -1].bool()
        torch.testing.assert_close(bridge_lens(bridge, batch, model, ids)[:, real], ref[:, real], rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(lens.run(model, batch, backend="nnsight").label_logits[:, :, 0], ref,
                                   rtol=1e-4, atol=1e-4)
    medians = timed(methods, args.rounds)
    times = {k: [v] for k, v in medians.items()}

    seq = batch.seq_len
    L, d = model.n_layers, model.cfg.d_model
    kept = {
        "hf_forward": args.batch * seq * args.vocab * 4,
        "lens": (L + 1) * args.batch * 2 * d * 4,
        "hidden_states": (L + 1) * args.batch * seq * d * 4 + args.batch * seq * args.vocab * 4,
        "per_layer_rerun": (L + 1) * args.batch * seq * d * 4 + args.batch * seq * args.vocab * 4,
        "lens + probes": (L + 1) * args.batch * 3 * d * 4,  # the lens's 2 positions + 1 pooled row
    }
    base = statistics.median(times["hf_forward"])
    print(f"Qwen2-Audio: {L} layers, d_model {d}, vocab {args.vocab}, batch {args.batch} x {seq} tokens, "
          f"{args.rounds} rounds, torch threads {torch.get_num_threads()}")
    print(f"{'method':<17}{'median s':>10}{'x hf_forward':>14}{'forward passes':>16}{'MB kept':>10}")
    kept |= {"nnsight_trace": (L + 1) * args.batch * d * 4, "tl_bridge_cache": (L + 1) * args.batch * seq * d * 4 +
             args.batch * seq * args.vocab * 4, "lens, nnsight": kept["lens"]}
    passes = {"hf_forward": 1, "lens": 1, "lens + probes": 1, "hidden_states": 1, "per_layer_rerun": L + 2, "nnsight_trace": 1,
              "tl_bridge_cache": 1, "lens, nnsight": 1}
    for name in methods:
        med = statistics.median(times[name])
        print(f"{name:<17}{med:>10.3f}{med / base:>14.2f}{passes[name]:>16}{kept[name] / 2**20:>10.1f}")
    print(f"per-layer re-run / lens: {medians['per_layer_rerun'] / medians['lens']:.1f}x")
    print(f"probes on top of the lens: {(medians['lens + probes'] - medians['lens']) / base:+.2f} plain forwards "
          "per clip (target: at most 0.3)")

    src = max(1, L - 5)
    variants = {"none": [], "audio_mask": [al.AudioMask()]}
    variants |= {f"enrich {s}": [al.Enrich(src, s, target_layer=L)] for s in (0.1, 0.5, 1.0, 2.0)}
    separate = lambda: {k: lens.run(model, batch, v) for k, v in variants.items()}
    shared = lambda: lens.run_many(model, batch, variants)
    a, b = separate(), shared()
    for k in variants:
        torch.testing.assert_close(a[k].label_logits, b[k].label_logits, rtol=1e-4, atol=1e-4)
    vt: dict[str, list[float]] = {"separate runs": [], "run_many": []}
    for _ in range(args.rounds):
        for name, fn in (("separate runs", separate), ("run_many", shared)):
            t = time.perf_counter()
            fn()
            vt[name].append(time.perf_counter() - t)
    print(f"\n{len(variants)} variants differing only at the last token")
    print(f"{'method':<17}{'median s':>10}{'x hf_forward':>14}{'x separate':>12}")
    sep = statistics.median(vt["separate runs"])
    for name, ts in vt.items():
        med = statistics.median(ts)
        print(f"{name:<17}{med:>10.3f}{med / base:>14.2f}{med / sep:>12.2f}")

    enc_lens = al.EncoderLens(task)
    got = enc_lens.run(model, batch).logits_at("last")
    torch.testing.assert_close(encoder_per_layer(model, batch, ids), got, rtol=1e-4, atol=1e-4)
    et = timed({"EncoderLens": lambda: enc_lens.run(model, batch),
                "per-layer forwards": lambda: encoder_per_layer(model, batch, ids)}, args.rounds)
    n_enc = model.n_encoder_layers
    print(f"\nencoder lens: {n_enc} encoder layers -> {n_enc + 1} readings")
    print(f"{'method':<20}{'median s':>10}{'x hf_forward':>14}{'x lens':>8}{'decoder passes':>16}")
    for name, med in et.items():
        passes = n_enc + 1 if name == "EncoderLens" else n_enc + 2
        print(f"{name:<20}{med:>10.3f}{med / base:>14.2f}{med / medians['lens']:>8.2f}{passes:>16}")

    if not args.no_protocol:
        labels = ["male", "female"] * (args.batch // 2) + ["male"] * (args.batch % 2)
        pt = protocol(model, clips, labels, args.rounds)
        unit = pt["plain forward (P3)"]
        print("\nwhole protocol per clip: 3 formats x {plain, audio mask} + 6 λ x 6 methods under P3")
        print(f"{'method':<24}{'median s':>10}{'plain forwards':>16}")
        for name, med in pt.items():
            print(f"{name:<24}{med:>10.3f}{med / unit:>16.2f}")

    if not args.no_listening:
        lt = listening(model, batch, args.rounds)
        unit = lt["plain forward"]
        print("\nlistening per clip (target: span attention adds <= 0.2 plain forwards to a lens pass; "
              f"the head finder <= layers + 1 = {L + 1} passes)")
        print(f"{'method':<32}{'median s':>10}{'plain forwards':>16}")
        for name, med in lt.items():
            print(f"{name:<32}{med:>10.3f}{med / unit:>16.2f}")
        added = (lt["lens + span attention"] - lt["lens (last token)"]) / unit
        print(f"span attention on top of the lens pass: {added:+.2f} plain forwards")


if __name__ == "__main__":
    main()
