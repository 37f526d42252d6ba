"""Train the small demo model shipped as ``audiolens.models.demo()``.

The recipe, end to end on a CPU:

1. synthesize speech with espeak-ng (``audiolens.data.synth``): English sentences in male and
   female voices for ``gender``, eight languages for ``language``, from the *train* split of
   sentences and voices;
2. build a Qwen2-Audio-architecture model from a small config (audio encoder 3 x 128, decoder
   6 x 128) with a 384-token byte-level BPE in which every label word is one token;
3. train it on exactly the inputs ``HookedAudioLM.prepare`` builds for the three Table I prompt
   formats, with the loss on the next token after the prompt (the label word's first token);
4. save it in half precision with its processor, reload what was saved, evaluate it on the
   *test* split (sentences and voices never heard in training), write test fixtures and a data
   card.

Deterministic for a seed with ``--steps`` (the default); with ``--minutes`` the learning-rate
schedule follows the clock instead (the data card records the step count reached).

Example:
    python scripts/train_demo.py --seed 0 --steps 2000
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Sleep rather than spin while waiting for the other thread: on a CPU shared with other jobs,
# spinning OpenMP threads made steps 3-7x slower. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from transformers import Qwen2AudioForConditionalGeneration  # noqa: E402

import audiolens as al  # noqa: E402
from audiolens.data.synth import SAMPLE_RATE, generate  # noqa: E402
from audiolens.models.tiny import (  # noqa: E402
    build_processor,
    build_tokenizer,
    default_corpus,
    tiny_qwen2_audio_config,
)

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("gender", "language")
FORMATS = ("P1", "P2", "P3")
MAX_SAMPLES = 3 * SAMPLE_RATE  # the model's 3-second Whisper window
ARCH = dict(n_layers=6, d_model=128, n_heads=4, audio_layers=3, audio_d_model=128)


@dataclass
class Clip:
    wav: np.ndarray
    label: str
    text: str
    voice: str


def synth(track: str, n_per_label: int, seed: int, split: str) -> list[Clip]:
    return [Clip(u.waveform, u.label, u.text, u.voice) for u in generate(track, n_per_label, seed, split)]


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's fixed position table: sin/cos at geometrically spaced timescales 1..10^4."""
    rates = torch.exp(-math.log(10_000) * torch.arange(channels // 2) / (channels // 2 - 1))
    angles = torch.arange(length)[:, None] * rates[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def build_model(seed: int) -> al.HookedAudioLM:
    labels = [lab for t in TASKS for lab in al.sakura_task(t).labels]
    # Extra "is <label>." lines so that BPE merges every " label" into a single token at 384.
    tokenizer = build_tokenizer(default_corpus() + [f"is {lab}." for lab in labels] * 40, 384)
    for lab in labels:
        if len(tokenizer(f" {lab}", add_special_tokens=False)["input_ids"]) != 1:
            raise RuntimeError(f"' {lab}' is not a single token; enlarge the vocabulary")
    processor = build_processor(tokenizer, window_seconds=3, n_mels=80)
    config = tiny_qwen2_audio_config(processor, **ARCH)
    torch.manual_seed(seed)
    hf_model = Qwen2AudioForConditionalGeneration(config)
    # The audio encoder's position table is frozen and a fresh model fills it with small noise,
    # which leaves the encoder blind to frame order (fine for pitch, not for language). Whisper
    # checkpoints carry a sinusoid table; so does this one.
    table = hf_model.model.audio_tower.embed_positions.weight
    with torch.no_grad():
        table.copy_(sinusoids(*table.shape))
    return al.HookedAudioLM.from_hf(hf_model, processor)


def random_eq(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random frequency response (a random walk in dB over log-spaced anchors).

    Some espeak-ng variants (``m8``, ``steph``) pass speech through a steep tone filter that no
    other variant has, and the split puts both in the test voices; random EQ teaches the model
    that the spectral envelope's overall shape says little about the speaker or language.
    """
    anchors = np.array([0, 150, 400, 800, 1500, 2500, 4000, 8000], dtype=float)
    gains_db = np.cumsum(np.r_[0, rng.uniform(-12, 6, len(anchors) - 1)])
    freqs = np.fft.rfftfreq(len(wav), 1 / SAMPLE_RATE)
    gain = 10 ** (np.interp(freqs, anchors, gains_db) / 20)
    out = np.fft.irfft(np.fft.rfft(wav) * gain, n=len(wav))
    return out / max(1e-4, float(np.abs(out).max()))


def augment(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random window (often shorter than the clip) of a randomly coloured, re-pitched clip.

    Short windows matter for language: with a few dozen sentences per language, whole clips can
    be told apart by sentence; pieces of 1-3 s make the model listen to the sounds themselves.
    Resampling by a few percent moves pitch and formants together, like a slightly different
    vocal tract, so that the 12 training voices cover more of the space between them.
    """
    if rng.random() < 0.7:
        wav = random_eq(wav, rng)
    rate = rng.uniform(0.92, 1.08)
    wav = np.interp(np.arange(0, len(wav) - 1, rate), np.arange(len(wav)), wav)
    n = min(len(wav), MAX_SAMPLES)
    if rng.random() < 0.5:
        n = int(rng.uniform(min(n, SAMPLE_RATE), n))
    start = int(rng.integers(0, len(wav) - n + 1))
    out = wav[start : start + n] * rng.uniform(0.3, 1.0)
    if rng.random() < 0.5:
        out = out + rng.normal(0, 10 ** rng.uniform(-3.5, -2.5), n)
    return np.clip(out, -1, 1).astype(np.float32)


def lr_at(progress: float, peak: float, step: int, warmup: int = 100) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 as ``progress`` goes to 1."""
    return peak * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(model: al.HookedAudioLM, data: dict[str, list[Clip]], args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    tasks = {t: al.sakura_task(t) for t in TASKS}
    targets = {t: torch.tensor(al.label_token_ids(model.tokenizer, tasks[t].labels)) for t in TASKS}
    opt = torch.optim.AdamW(model.hf_model.parameters(), lr=args.lr, weight_decay=0.01)
    model.hf_model.train()
    start, losses, step = time.time(), [], 0
    while True:
        # With --steps the schedule follows the step count (reproducible); otherwise the clock,
        # since the CPU is shared and a step's cost is not known in advance.
        progress = step / args.steps if args.steps else (time.time() - start) / (args.minutes * 60)
        if progress >= 1:
            break
        # Language is the harder task (8 classes, new sentences at test time): ask it more often.
        track = "language" if rng.random() < args.language_share else "gender"
        pool = data[track]
        fmt = FORMATS[int(rng.integers(len(FORMATS)))]
        clips = [pool[i] for i in rng.integers(len(pool), size=args.batch_size)]
        batch = model.prepare(
            [augment(c.wav, rng) for c in clips], SAMPLE_RATE, tasks[track].prompt(fmt), [c.label for c in clips]
        )
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, args.lr, step)
        logits = model(batch, positions="last")[:, 0].float()
        loss = torch.nn.functional.cross_entropy(logits, targets[track][batch.targets])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.hf_model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            print(f"step {step} progress {progress:.2f} loss {np.mean(losses[-100:]):.3f} "
                  f"{time.time() - start:.0f}s", flush=True)
    model.hf_model.eval()
    return {"steps": step, "seconds": time.time() - start, "final_loss": float(np.mean(losses[-200:]))}


def window(wav: np.ndarray) -> np.ndarray:
    """Evaluation sees the first 3 s of a clip, as ``prepare(..., truncate=True)`` would."""
    return wav[:MAX_SAMPLES]


def evaluate(model: al.HookedAudioLM, track: str, clips: list[Clip], fmt: str, chunk: int = 32):
    task = al.sakura_task(track)
    lens = al.LogitLens(task, positions=("last",))
    results = []
    for i in range(0, len(clips), chunk):
        part = clips[i : i + chunk]
        batch = model.prepare([window(c.wav) for c in part], SAMPLE_RATE, task.prompt(fmt), [c.label for c in part])
        results.append(lens.run(model, batch))
    return al.LensResult.concat(results)


def per_class(res: al.LensResult, labels: tuple[str, ...]) -> dict[str, float]:
    targets = res.targets.numpy()
    return {lab: float(res.correct[targets == k].mean()) for k, lab in enumerate(labels)}


def save(model: al.HookedAudioLM, out: Path) -> None:
    if out.exists():
        for f in out.iterdir():
            if f.name != "README.md":
                f.unlink() if f.is_file() else shutil.rmtree(f)
    out.mkdir(parents=True, exist_ok=True)
    model.hf_model.to(torch.float16).save_pretrained(out)
    model.processor.save_pretrained(out)
    model.hf_model.to(torch.float32)


def write_fixtures(clips: dict[str, list[Clip]], out: Path) -> None:
    """Held-out clips for the tests: 16 kHz Ogg Vorbis (a sixth of FLAC; accuracy is measured
    on the decoded files, so the codec is part of what the tests pin)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "task", "label", "text", "voice"])
        for track, items in clips.items():
            for k, c in enumerate(items):
                name = f"{track}_{k:02d}_{c.label.lower()}.ogg"
                sf.write(out / name, window(c.wav), SAMPLE_RATE, format="OGG", subtype="VORBIS")
                w.writerow([name, track, c.label, c.text, c.voice])


def read_fixtures(out: Path) -> dict[str, list[Clip]]:
    clips: dict[str, list[Clip]] = {t: [] for t in TASKS}
    with open(out / "labels.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            wav, _ = sf.read(out / row["file"], dtype="float32")
            clips[row["task"]].append(Clip(wav, row["label"], row["text"], row["voice"]))
    return clips


def card(args: argparse.Namespace, stats: dict, report: dict, fixtures: dict, n_params: int, n_train: dict,
         n_test: dict, size_mb: float) -> str:
    lines = [
        "# audiolens demo model",
        "",
        "A tiny audio-language model with the Qwen2-Audio architecture, trained on synthetic",
        "speech so that `audiolens.models.demo()` shows real layer-by-layer dynamics offline.",
        "",
        "**What it is not:** not a real large audio-language model. It knows two questions (the",
        "SAKURA gender and language prompts of the paper's Table I, formats P1-P3) and a",
        f"{384}-token vocabulary; it cannot transcribe, chat or answer anything else, and it has",
        "only heard espeak-ng's formant-synthesized voices, not human speech. Use it to learn the",
        "library, not to draw conclusions about real models.",
        "",
        "## Model",
        "",
        f"- `Qwen2AudioForConditionalGeneration`, {n_params / 1e6:.2f} M parameters: audio encoder "
        f"{ARCH['audio_layers']} layers x d {ARCH['audio_d_model']}, decoder {ARCH['n_layers']} layers x hidden "
        f"{ARCH['d_model']} ({ARCH['n_heads']} heads).",
        "- Whisper features, 80 mel bins, 3-second windows (`max_source_positions` 150); longer clips",
        "  must be cut (`prepare(..., truncate=True)`).",
        "- Byte-level BPE, 384 tokens, trained on the prompts; every label word with its leading",
        "  space is one token. Qwen2-Audio chat template.",
        f"- Stored in float16 safetensors with processor and tokenizer ({size_mb:.1f} MB);",
        "  `audiolens.models.demo()` loads it in float32 on the CPU.",
        "",
        "## Training",
        "",
        "- Data: espeak-ng speech from `audiolens.data.synth`, *train* split only (three of every four",
        "  sentences and voice variants). Gender: English sentences, espeak-ng male (`+m1..m8`) vs",
        "  female (`+f1..f5`, Andrea, belinda, steph) variants, `en`/`en-us`. Language: English,",
        "  German, Spanish, French, Italian, Chinese (pinyin voice), Japanese (kana), Korean, male and",
        "  female variants. Pitch and speed jittered per clip.",
        f"- {n_train['gender']} gender clips and {n_train['language']} language clips; each step draws a random",
        "  window of 1-3 s (half the time the whole clip), a random gain and faint noise.",
        f"- Inputs exactly as `HookedAudioLM.prepare` builds them, prompt format P1/P2/P3 at random; "
        f"language asked in {args.language_share:.0%} of batches.",
        "- Loss: cross-entropy of the next token at the last position against the label word's",
        "  first token (with leading space); nothing else is trained.",
        f"- AdamW (weight decay 0.01), peak lr {args.lr:g}, 100 warm-up steps then cosine decay, batch",
        f"  {args.batch_size}, gradient clipping 1.0; {stats['steps']} steps in {stats['seconds'] / 60:.1f} min on 2 CPU",
        f"  cores (final training loss {stats['final_loss']:.3f}).",
        f"- Command: `python scripts/train_demo.py {' '.join(args.argv)}` "
        + ("(deterministic)." if args.steps else "(schedule by the clock, so not bit-reproducible)."),
        "",
        "## Held-out evaluation",
        "",
        f"Test split (sentences *and* voices never heard in training): {n_test['gender']} gender clips, "
        f"{n_test['language']} language clips, first 3 s, evaluated on the saved float16 weights with",
        "`LogitLens` (accuracy = argmax over the label tokens at the last layer and token).",
        "",
    ]
    for track in TASKS:
        labels = al.sakura_task(track).labels
        lines += [f"### {track}", "", "| format | overall | " + " | ".join(labels) + " |",
                  "|---" * (len(labels) + 2) + "|"]
        for fmt in FORMATS:
            r = report[track][fmt]
            lines.append(f"| {fmt} | {r['accuracy']:.3f} | " + " | ".join(f"{r['per_class'][lab]:.2f}" for lab in labels) + " |")
        lines += ["", "Information score (Eq. 2) per layer at the last token (layer 0 = embeddings):", "",
                  "| format | " + " | ".join(f"ℓ={layer}" for layer in range(ARCH["n_layers"] + 1)) + " | critical layer |",
                  "|---" * (ARCH["n_layers"] + 3) + "|"]
        for fmt in FORMATS:
            r = report[track][fmt]
            lines.append(f"| {fmt} | " + " | ".join(f"{s:.2f}" for s in r["info"]) + f" | {r['critical']:.2f} |")
        lines.append("")
    lines += [
        "## Test fixtures",
        "",
        f"`tests/fixtures/demo/`: {len(fixtures['gender']['correct'])} gender and "
        f"{len(fixtures['language']['correct'])} language held-out clips (another seed of the test split),",
        f"16 kHz Ogg Vorbis. Accuracy there (P3): gender {fixtures['gender']['accuracy']:.3f}, "
        f"language {fixtures['language']['accuracy']:.3f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000, help="training steps (about 13 min on 2 idle cores)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="train for this long instead of --steps (schedule by the clock)")
    parser.add_argument("--out", type=Path, default=ROOT / "src/audiolens/models/demo")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests/fixtures/demo")
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--language-share", type=float, default=0.7)
    parser.add_argument("--train-per-label", type=int, nargs=2, default=(1000, 400), metavar=("GENDER", "LANGUAGE"))
    parser.add_argument("--test-per-label", type=int, nargs=2, default=(100, 40), metavar=("GENDER", "LANGUAGE"))
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if args.minutes is not None:
        args.steps = None
    torch.set_num_threads(2)

    t0 = time.time()
    train_data = {t: synth(t, n, args.seed, "train") for t, n in zip(TASKS, args.train_per_label)}
    # Test clips come from another seed, so pitch/speed draws differ from training too.
    test_data = {t: synth(t, n, args.seed + 1000, "test") for t, n in zip(TASKS, args.test_per_label)}
    fixture_data = {t: synth(t, n, args.seed + 2000, "test") for t, n in zip(TASKS, (8, 2))}
    print(f"synthesized in {time.time() - t0:.0f}s", flush=True)

    model = build_model(args.seed)
    n_params = sum(p.numel() for p in model.hf_model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters", flush=True)
    stats = train(model, train_data, args)
    save(model, args.out)

    # Everything below uses the weights as shipped (float16, reloaded in float32).
    from audiolens.models.pretrained import demo

    model = al.HookedAudioLM.from_pretrained(str(args.out), torch_dtype=torch.float32)
    report: dict = {}
    for track in TASKS:
        labels = al.sakura_task(track).labels
        report[track] = {}
        for fmt in FORMATS:
            res = evaluate(model, track, test_data[track], fmt)
            info = res.info_scores()
            report[track][fmt] = {
                "accuracy": res.accuracy(), "per_class": per_class(res, labels), "info": info,
                "critical": res.critical_layer(),
            }
            print(track, fmt, f"{res.accuracy():.3f}", np.round(info, 2), flush=True)

    write_fixtures(fixture_data, args.fixtures)
    model = demo() if args.out == ROOT / "src/audiolens/models/demo" else model
    fixtures = {}
    for track, clips in read_fixtures(args.fixtures).items():
        res = evaluate(model, track, clips, "P3")
        fixtures[track] = {"accuracy": res.accuracy(), "correct": res.correct}
        print("fixtures", track, f"{res.accuracy():.3f}", flush=True)

    size_mb = sum(f.stat().st_size for f in args.out.iterdir() if f.name != "README.md") / 1e6
    text = card(args, stats, report, fixtures, n_params,
                {t: len(v) for t, v in train_data.items()}, {t: len(v) for t, v in test_data.items()}, size_mb)
    (args.out / "README.md").write_text(text, encoding="utf-8")
    print(f"done in {(time.time() - t0) / 60:.1f} min; {size_mb:.1f} MB in {args.out}", flush=True)


if __name__ == "__main__":
    main()
