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

A second table times six intervention variants that differ only at the last token (plain,
audio mask, four enrichment scales) run one by one versus LogitLens.run_many, which runs the
prefix once and reuses its key/value cache.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

import audiolens as al
from audiolens.models.tiny.qwen2_audio import build_processor, tiny_qwen2_audio_config


def build(layers: int, vocab: int, seconds: int, d_model: int) -> al.HookedAudioLM:
    from transformers import Qwen2AudioForConditionalGeneration

    processor = build_processor(window_seconds=seconds)
    config = tiny_qwen2_audio_config(processor, n_layers=layers, d_model=d_model, n_heads=8)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seconds", type=int, default=15, help="audio window (25 tokens per second)")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)

    model = build(args.layers, args.vocab, args.seconds, args.d_model)
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
    }
    # All four agree on the numbers before any of them is timed.
    ref = lens.run(model, batch).label_logits[:, :, 0]
    torch.testing.assert_close(hidden_states_lens(model, batch, ids), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(per_layer_rerun(model, batch, ids), ref, rtol=1e-4, atol=1e-4)

    times: dict[str, list[float]] = {k: [] for k in methods}
    for fn in methods.values():  # warm-up
        fn()
    for _ in range(args.rounds):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    seq = batch.seq_len
    L, d = model.n_layers, model.cfg.d_model
    kept = {
        "hf_forward": args.batch * seq * args.vocab * 4,
        "lens": (L + 1) * args.batch * 2 * d * 4,
        "hidden_states": (L + 1) * args.batch * seq * d * 4 + args.batch * seq * args.vocab * 4,
        "per_layer_rerun": (L + 1) * args.batch * seq * d * 4 + args.batch * seq * args.vocab * 4,
    }
    base = statistics.median(times["hf_forward"])
    print(f"Qwen2-Audio: {L} layers, d_model {d}, vocab {args.vocab}, batch {args.batch} x {seq} tokens, "
          f"{args.rounds} rounds, torch threads {torch.get_num_threads()}")
    print(f"{'method':<17}{'median s':>10}{'x hf_forward':>14}{'forward passes':>16}{'MB kept':>10}")
    passes = {"hf_forward": 1, "lens": 1, "hidden_states": 1, "per_layer_rerun": L + 2}
    for name in methods:
        med = statistics.median(times[name])
        print(f"{name:<17}{med:>10.3f}{med / base:>14.2f}{passes[name]:>16}{kept[name] / 2**20:>10.1f}")

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


if __name__ == "__main__":
    main()
