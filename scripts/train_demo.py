"""Train the small demo model shipped as ``audiolens.models.demo()``.

The recipe, end to end on a CPU:

1. synthesize speech with espeak-ng (``audiolens.data.synth``): English sentences in male and
   female voices for ``gender``, eight languages for ``language``, from the *train* split of
   sentences and voices, plus language clips that speak random word sequences drawn from the
   train sentences (more variety than the sentences alone);
2. build a Qwen2-Audio-architecture model from a small config: a narrow audio path (the
   encoder's two convolutions, width 32, and no encoder layers, so each audio token sees a few
   tens of milliseconds) into a deeper decoder (8 x 96) that has to do the listening, with a
   384-token byte-level BPE in which every label word is one token;
3. train the whole model from scratch on exactly the inputs ``HookedAudioLM.prepare`` builds for
   the three Table I prompt formats, with the loss on the next token after the prompt (the
   label word's first token) and nothing else: no auxiliary heads, so the encoder's output is
   not made label-ready and the decoder has to work the attribute out; clips are augmented and
   many carry white noise at 0-20 dB SNR;
4. save it in half precision with its processor, reload what was saved, check the goals on the
   *validation* split (the split that chose the recipe and the seed), evaluate it on the *test*
   split (sentences and voices never heard in training and never used for a choice), write test
   fixtures and a data card with what the model shows and what it does not.

Deterministic for a seed with ``--steps`` (the default); with ``--minutes`` the learning-rate
schedule follows the clock instead (the data card records the step count reached).

Example:
    python scripts/train_demo.py --seed 1
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# Sleep rather than spin while waiting for the other thread: on a CPU shared with other jobs,
# spinning OpenMP threads made steps 3-7x slower. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import soundfile as sf
import torch
from transformers import Qwen2AudioForConditionalGeneration

import audiolens as al
from audiolens.data.synth import (
    LANGUAGES,
    SAMPLE_RATE,
    generate,
    load_sentences,
    plan,
    render,
    voice_gender,
)
from audiolens.models.tiny import (
    build_processor,
    build_tokenizer,
    default_corpus,
)
from audiolens.models.tiny.qwen2_audio import tiny_qwen2_audio_config

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("gender", "language")
FORMATS = ("P1", "P2", "P3")
MAX_SAMPLES = 3 * SAMPLE_RATE  # the model's 3-second Whisper window
ARCH = {"n_layers": 8, "d_model": 96, "n_heads": 4, "audio_layers": 0, "audio_d_model": 32}


@dataclass
class Clip:
    wav: np.ndarray
    label: str
    text: str
    voice: str


def synth(track: str, n_per_label: int, seed: int, split: str) -> list[Clip]:
    return [Clip(u.waveform, u.label, u.text, u.voice) for u in generate(track, n_per_label, seed, split)]


def words(code: str, sentence: str) -> list[str]:
    """Word-like pieces of a sentence (pairs of characters for Chinese, which has no spaces)."""
    text = re.sub(r"[.,!?;:¿¡。、？！，]", " ", sentence)
    if code == "zh":
        text = text.replace(" ", "")
        return [text[i : i + 2] for i in range(0, len(text), 2)]
    return text.split()


def word_salad(n_per_label: int, seed: int) -> list[Clip]:
    """Language clips that speak 4-10 random words from the language's *train* sentences.

    Train voices, pitch and speed as ``synth``; only the text differs. Sentences alone let the
    model tell languages apart by which sentence it hears; random word sequences keep the
    sounds of each language while breaking that shortcut.
    """
    rng = np.random.default_rng([seed, 7])
    plans = plan("language", n_per_label, seed + 500, "train")
    vocab = {lab: [w for t in load_sentences(code, "train") for w in words(code, t)]
             for lab, (code, _) in LANGUAGES.items()}
    for i, p in enumerate(plans):
        pool = vocab[p.label]
        picks = [pool[k] for k in rng.integers(len(pool), size=int(rng.integers(4, 11)))]
        plans[i] = dataclasses.replace(p, text=("" if LANGUAGES[p.label][0] == "zh" else " ").join(picks))
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [Clip(w, p.label, p.text, p.voice) for p, w in zip(plans, pool.map(render, plans))]


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
        # HF's default std 0.02 is tuned for widths in the thousands; at width 128 it leaves the
        # audio path's activations tiny and its learning slow. Fan-in scaling instead.
        for module in (hf_model.model.audio_tower, hf_model.model.multi_modal_projector):
            for name, w in module.named_parameters():
                if w.ndim >= 2 and "embed_positions" not in name:
                    w.normal_(0, w[0].numel() ** -0.5)
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


def maybe_augment(wav: np.ndarray, rng: np.random.Generator, share: float, noise: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    """``augment`` for a ``share`` of the clips, the plain 3-second window for the rest; then,
    for a ``noise[0]`` share of the clips, white noise at an SNR drawn from ``noise[1:]`` dB.

    Both halves matter: plain clips fit fast, augmented ones carry to unheard voices.
    """
    out = augment(wav, rng) if rng.random() < share else window(wav)
    if rng.random() < noise[0]:
        out = add_noise(out, rng.uniform(noise[1], noise[2]), rng)
    return out


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``wav`` plus white noise ``snr_db`` below its power."""
    power = float(np.mean(wav.astype(np.float64) ** 2)) or 1e-8
    out = wav + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(wav))
    return np.clip(out, -1, 1).astype(np.float32)


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


def pick(data: dict[str, list[Clip]], args: argparse.Namespace, rng: np.random.Generator):
    """A batch's track and clips; language is the harder task (8 classes), so asked more often."""
    track = "language" if rng.random() < args.language_share else "gender"
    pool = data[track]
    return track, [pool[i] for i in rng.integers(len(pool), size=args.batch_size)]


def train(model: al.HookedAudioLM, data: dict[str, list[Clip]], args, watch: dict[str, list[Clip]]) -> dict:
    """The whole model on the answer token (the label word's first token after the prompt).

    ``watch``: validation clips whose accuracy and information scores are printed every
    ``args.eval_every`` steps, to follow training (the split that choices are made on).
    """
    rng = np.random.default_rng(args.seed)
    tasks = {t: al.sakura_task(t) for t in TASKS}
    targets = {t: torch.tensor(al.label_token_ids(model.tokenizer, tasks[t].labels)) for t in TASKS}
    params = list(model.hf_model.parameters())
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay)
    model.hf_model.train()
    start, losses, step = time.time(), [], 0
    while True:
        # With --steps the schedule follows the step count (reproducible); otherwise the clock,
        # since the CPU is shared and a step's cost is not known in advance.
        progress = step / args.steps if args.steps else (time.time() - start) / (args.minutes * 60)
        if progress >= 1:
            break
        track, clips = pick(data, args, rng)
        fmt = FORMATS[int(rng.integers(len(FORMATS)))]
        batch = model.prepare(
            [maybe_augment(c.wav, rng, args.augment_share, args.noise) for c in clips], SAMPLE_RATE,
            tasks[track].prompt(fmt), [c.label for c in clips],
        )
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, args.lr, step)
        logits = model(batch, positions="last")[:, 0].float()
        loss = torch.nn.functional.cross_entropy(logits, targets[track][batch.targets])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            print(f"step {step} progress {progress:.2f} loss {np.mean(losses[-100:]):.3f} "
                  f"{time.time() - start:.0f}s", flush=True)
        if args.eval_every and step % args.eval_every == 0:
            model.hf_model.eval()
            for track, clips in watch.items():
                res = evaluate(model, track, clips, "P1")
                print(f"  watch {track} acc {res.accuracy():.2f} info", np.round(res.info_scores(), 2), flush=True)
            model.hf_model.train()
    model.hf_model.eval()
    return {"steps": step, "seconds": time.time() - start, "final_loss": float(np.mean(losses[-200:]))}


def window(wav: np.ndarray) -> np.ndarray:
    """Evaluation sees the first 3 s of a clip, as ``prepare(..., truncate=True)`` would."""
    return wav[:MAX_SAMPLES]


def evaluate(model: al.HookedAudioLM, track: str, clips: list[Clip], fmt: str, chunk: int = 32,
             masked: bool = False):
    """The lens on ``clips`` under prompt format ``fmt``; with ``masked``, a pair (plain, with
    the audio masked at the last token)."""
    task = al.sakura_task(track)
    lens = al.LogitLens(task, positions=("last",))
    variants = {"none": [], "audio_mask": [al.AudioMask()]} if masked else {"none": []}
    results: dict[str, list[al.LensResult]] = {k: [] for k in variants}
    for i in range(0, len(clips), chunk):
        part = clips[i : i + chunk]
        batch = model.prepare([window(c.wav) for c in part], SAMPLE_RATE, task.prompt(fmt), [c.label for c in part])
        for k, res in lens.run_many(model, batch, variants).items():
            results[k].append(res)
    out = tuple(al.LensResult.concat(results[k]) for k in variants)
    return out if masked else out[0]


def build_up(info: np.ndarray, n_labels: int) -> tuple[float, int]:
    """How the information score builds up: block 1's share of the way from chance to the last
    layer's score, and the first block whose score reaches the last layer's (less 0.01)."""
    chance, final = 1 / n_labels, float(info[-1])
    share = (float(info[1]) - chance) / (final - chance) if final > chance else float("nan")
    first = int(np.argmax(info[1:] >= final - 0.01)) + 1
    return share, first


def per_class(res: al.LensResult, labels: tuple[str, ...]) -> dict[str, float]:
    targets = res.targets.numpy()
    return {lab: float(res.correct[targets == k].mean()) for k, lab in enumerate(labels)}


def evaluate_split(model: al.HookedAudioLM, data: dict[str, list[Clip]], name: str) -> dict:
    """Per track and prompt format: accuracy, masked accuracy, wrong answers, information scores
    and how they build up (what the card's tables and the goals read)."""
    report: dict = {}
    for track in TASKS:
        labels = al.sakura_task(track).labels
        report[track] = {}
        for fmt in FORMATS:
            res, masked = evaluate(model, track, data[track], fmt, masked=True)
            info = res.info_scores()
            share, first = build_up(info, len(labels))
            report[track][fmt] = {
                "accuracy": res.accuracy(), "per_class": per_class(res, labels), "info": info,
                "critical": res.critical_layer(), "masked": masked.accuracy(),
                "wrong": int((~res.correct).sum()), "share": share, "first": first,
            }
            print(name, track, fmt, f"{res.accuracy():.3f} masked {masked.accuracy():.3f}", np.round(info, 2),
                  f"block-1 share {share:.2f}, first at final {first}", flush=True)
    return report


# What a demo model must show to be shipped, checked on the validation split: it answers well
# above chance, completes gender no earlier than block ceil(L/2) (so the layer dynamics have
# something to show), and falls to chance when the audio is masked at the answer token.
GOALS = {"gender": 0.85, "language": 0.60}


def goals(report: dict, n_layers: int) -> list[tuple[str, str, bool]]:
    """(goal, value on the split, met) rows for the card, from ``evaluate_split``'s report."""
    half = math.ceil(n_layers / 2)
    rows = []
    for track, bar in GOALS.items():
        chance = 1 / len(al.sakura_task(track).labels)
        acc = min(r["accuracy"] for r in report[track].values())
        masked = max(abs(r["masked"] - chance) for r in report[track].values())
        rows.append((f"{track}: accuracy at least {bar:.2f} in every format", f"{acc:.3f}", acc >= bar))
        rows.append((f"{track}: masked accuracy within 0.10 of chance ({chance:.3f})", f"off by {masked:.3f}",
                     masked <= 0.10))
    first = min(r["first"] for r in report["gender"].values())
    rows.append((f"gender: no block before ⌈L/2⌉ = {half} at the final score", f"first block {first}", first >= half))
    return rows


def gender_breakdown(model: al.HookedAudioLM, data: dict[str, list[Clip]], fmt: str = "P1") -> dict:
    """The gender question on every clip of ``data`` (both tracks: English gender clips and the
    language clips, whose voices have a gender too), labelled by the voice's gender; accuracy
    per language and per voice variant."""
    task = al.sakura_task("gender")
    clips = [(c, "English" if track == "gender" else c.label) for track in TASKS for c in data[track]]
    relabelled = [dataclasses.replace(c, label=voice_gender(c.voice)) for c, _ in clips]
    correct = evaluate(model, "gender", relabelled, fmt).correct
    languages = [lang for _, lang in clips]
    voices = [c.voice.rpartition("+")[2] for c in relabelled]
    genders = [c.label for c in relabelled]

    def acc(keep) -> tuple[float, int]:
        keep = np.asarray(keep, bool)
        return (float(correct[keep].mean()) if keep.any() else float("nan")), int(keep.sum())

    by_language = {
        lang: {g: acc([la == lang and ge == g for la, ge in zip(languages, genders)]) for g in task.labels}
        for lang in LANGUAGES
    }
    by_voice = {
        v: {"gender": voice_gender(v),
            "English": acc([vo == v and la == "English" for vo, la in zip(voices, languages)]),
            "other": acc([vo == v and la != "English" for vo, la in zip(voices, languages)])}
        for v in sorted(set(voices), key=lambda v: (voice_gender(v) == "female", v.lower()))
    }
    return {"format": fmt, "language": by_language, "voice": by_voice}


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


def mean_accuracy(report: dict, track: str) -> float:
    return float(np.mean([r["accuracy"] for r in report[track].values()]))


def pooled(cells: list[tuple[float, int]]) -> float:
    """The accuracy over all clips of (accuracy, clips) cells."""
    n = sum(k for _, k in cells)
    return sum(acc * k for acc, k in cells if k) / n if n else float("nan")


def fmt_acc(value: tuple[float, int]) -> str:
    acc, n = value
    return f"{acc:.2f} ({n})" if n else "-"


def selection_sentence(stats: dict) -> str:
    """How the seed was kept, from ``training.json`` (``--seeds`` records every try)."""
    if "selection" not in stats:
        return "Goals on the validation split:"
    met = any(all(ok for *_, ok in t["goals"]) for t in stats["selection"])
    return (("The seed is the first of those tried whose model met every goal" if met
             else "No seed tried met every goal, and the last one is kept")
            + " on the validation split (each judged on validation clips drawn at its own seed + 1000):")


def selection_table(stats: dict, validation: dict, n_layers: int) -> list[str]:
    """The goals per seed tried (``--seeds``), or the shipped model's goals alone."""
    tried = stats.get("selection") or [
        {"seed": stats.get("seed", "-"), "goals": [list(row) for row in goals(validation, n_layers)]}]
    names = [goal for goal, _, _ in tried[0]["goals"]]
    lines = ["| goal (validation split) | " + " | ".join(f"seed {t['seed']}" for t in tried) + " |",
             "|---" * (len(tried) + 1) + "|"]
    for k, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(
            f"{t['goals'][k][1]} ({'met' if t['goals'][k][2] else 'missed'})" for t in tried) + " |")
    return lines


def retraining_note(path: Path) -> list[str]:
    """What a later run of this script (``--seeds``) made of the same recipe, from the record
    kept beside the shipped weights (``retraining.json``: that run's training.json, and whether
    its weights equal the shipped ones); nothing when there is none."""
    if not path.is_file():
        return []
    run = json.loads(path.read_text(encoding="utf-8"))
    met = [t["seed"] for t in run["selection"] if all(ok for *_, ok in t["goals"])]
    return [
        (f"- Retrained by this script as it is now (`TRAIN_THREADS={run['threads']} python scripts/train_demo.py "
         f"{run['command']}`): the weights {'equal' if run['weights_equal_shipped'] else 'differ from'} the "
         "shipped ones (trained through an earlier version of the library), and "
         + (f"seed {met[0]} met every goal first" if met else "no seed tried met every goal")
         + ". The shipped model stays; on the validation split of each seed:"),
        "",
        *selection_table(run, {}, 0),
        "",
    ]


def card(args: argparse.Namespace, stats: dict, report: dict, validation: dict, breakdown: dict, fixtures: dict,
         n_params: int, n_train: dict, n_test: dict, size_mb: float) -> str:
    n_layers = ARCH["n_layers"]
    half = math.ceil(n_layers / 2)
    snr = f"white noise at {args.noise[1]:g}-{args.noise[2]:g} dB SNR on {args.noise[0]:.0%} of the clips"
    lines = [
        "# audiolens demo model",
        "",
        "A tiny audio-language model with the Qwen2-Audio architecture, trained on synthetic",
        "speech so that `audiolens.models.demo()` shows real layer-by-layer dynamics offline.",
        "",
        "**What it is not:** not a real large audio-language model. It knows two questions (the",
        "SAKURA gender and language prompts of the paper's Table I, formats P1-P3) and a",
        "384-token vocabulary; it cannot transcribe, chat or answer anything else, and it has",
        "only heard espeak-ng's formant-synthesized voices, not human speech. Use it to learn the",
        "library, not to draw conclusions about real models.",
        "",
        "## What it shows",
        "",
        ("On the test split, sentences and voices never heard in training and never used for a "
        f"choice (the tables below; format P1-P3, L = {n_layers} blocks, chance 1/|Y|):"),
        "",
        ("| attribute | accuracy | wrong answers | audio masked at the last token | block 1's share of the way "
        "from chance to the final score | first block at the final score (less 0.01) |"),
        "|---|---|---|---|---|---|",
    ]
    for track in TASKS:
        rows = [report[track][fmt] for fmt in FORMATS]
        acc = "/".join(f"{r['accuracy']:.2f}" for r in rows)
        wrong = "/".join(f"{r['wrong']}" for r in rows)
        masked = "/".join(f"{r['masked']:.2f}" for r in rows)
        share = "/".join(f"{r['share']:.2f}" for r in rows)
        first = "/".join(f"{r['first']}" for r in rows)
        lines.append(f"| {track} | {acc} | {wrong} of {n_test[track]} | {masked} | {share} | {first} |")
    lines += [
        "",
        "Per format P1/P2/P3. Block 1's share: how far block 1's information score is from chance",
        "towards the last layer's (0: at chance, 1: all the way). First block: the first block whose",
        f"score is within 0.01 of the last layer's (⌈L/2⌉ = {half}). Chance is 0.50 for gender and",
        "0.125 for language. The accuracy with the audio masked at the last token shows whether the",
        "answer token reads the attribute from the audio itself.",
        "",
        ("The test voices are other espeak-ng variants than the train and validation voices. Mean "
         "accuracy over the formats on the test split: "
         + ", ".join(f"{t} {mean_accuracy(report, t):.2f}" for t in TASKS) + "; on the validation split "
         "the choices were made on (below): " + ", ".join(f"{t} {mean_accuracy(validation, t):.2f}" for t in TASKS)
         + "."),
        "",
        ("What it does not show: anything about human speech or real LALMs, whose critical layers "
        f"sit far deeper (this decoder has {n_layers} blocks); its wrong answers come from unheard voices and "
        "sentences of a synthesizer, not from the confusions of real speech."),
        "",
        "## Gender by language and voice",
        "",
        (f"The gender question (format {breakdown['format']}) asked of every test clip of both tracks, "
         "labelled by the voice's gender: the English gender clips and the language clips, spoken by "
         "the same test voices. Accuracy (clips):"),
        "",
        "| language | male voices | female voices |",
        "|---|---|---|",
    ]
    for lang, row in breakdown["language"].items():
        lines.append(f"| {lang} | {fmt_acc(row['male'])} | {fmt_acc(row['female'])} |")
    lines += [
        "",
        "| voice | gender | English | the seven other languages |",
        "|---|---|---|---|",
    ]
    for voice, row in breakdown["voice"].items():
        lines.append(f"| {voice} | {row['gender']} | {fmt_acc(row['English'])} | {fmt_acc(row['other'])} |")
    other = {g: pooled([row[g] for lang, row in breakdown["language"].items() if lang != "English"])
             for g in ("male", "female")}
    lines += [
        "",
        (f"Over the seven other languages, male voices are called male in {other['male']:.0%} of the clips "
         f"and female voices female in {other['female']:.0%}. Training asked the gender question of "
         "English speech only, so what the model calls a voice in another language is carried over "
         "from English; read these rows before trusting a gender answer there."),
        "",
        "## Model",
        "",
        (f"- `Qwen2AudioForConditionalGeneration`, {n_params / 1e6:.2f} M parameters: audio encoder "
        + (f"{ARCH['audio_layers']} layer(s) x d {ARCH['audio_d_model']}" if ARCH["audio_layers"] else
           f"of its two convolutions only (width {ARCH['audio_d_model']}, no transformer layers: each "
           "audio token sees a few tens of milliseconds)")
        + f", decoder {ARCH['n_layers']} layers x hidden {ARCH['d_model']} ({ARCH['n_heads']} heads)."),
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
        "  sentences and voice variants; the fourth is the validation split). Gender: English sentences, espeak-ng male (`+m1..m8`) vs",
        "  female (`+f1..f5`, Andrea, belinda, steph) variants, `en`/`en-us`. Language: English,",
        "  German, Spanish, French, Italian, Chinese (pinyin voice), Japanese (kana), Korean, male and",
        "  female variants. Pitch and speed jittered per clip.",
        f"- {n_train['gender']} gender clips and {n_train['language']} language clips of the train sentences",
        f"  ({len(load_sentences('en', 'train'))} per language), plus {args.salad_per_label * 8} language clips speaking 4-10 random words drawn",
        "  from those sentences (Chinese: character pairs), so that sentence identity is no shortcut.",
        f"- Augmentation, on {args.augment_share:.0%} of the clips per step: a random EQ (smooth random",
        "  frequency response), resampling by 0.92-1.08 (pitch and formants move together), a random",
        "  window of 1-3 s (half the time the whole clip), random gain and faint noise; the other",
        f"  clips are used as they are (first 3 s). Then {snr}.",
        "- Init: HF defaults, except fan-in scaled weights (std 1/sqrt(fan_in)) in the audio encoder",
        "  and projector and a Whisper sinusoid table for the encoder's frozen positions.",
        "- The whole model from scratch, on inputs exactly as `HookedAudioLM.prepare` builds them,",
        f"  prompt format P1/P2/P3 at random, language asked in {args.language_share:.0%} of batches. Loss:",
        "  cross-entropy of the next token at the last position against the label word's first token",
        "  (with leading space), and nothing else: no auxiliary heads or encoder pretraining, which",
        "  would make the encoder's output label-ready and put the whole answer in block 1.",
        f"- AdamW (weight decay {args.weight_decay:g}), peak lr {args.lr:g}, 100 warm-up steps then cosine decay, batch",
        (f"  {args.batch_size}, gradient clipping 1.0; {stats['steps']} steps in {stats['seconds'] / 60:.1f} min on "
        f"{stats['threads']} CPU thread(s)"),
        f"  (final answer-token loss {stats['final_loss']:.3f}).",
        ("- Choices: the settings above and the seed were chosen on the *validation* split (every "
         "fourth packaged sentence and voice variant: held out from training, printed during training "
         "with `--eval-every`), never on the test split. The block where gender completes depends on "
         "the seed, not only on the settings: small changes to the settings moved it between blocks 1 "
         "and 8. " + selection_sentence(stats)),
        "",
        *selection_table(stats, validation, n_layers),
        "",
        *retraining_note(args.out / "retraining.json"),
        f"- Command: `TRAIN_THREADS={stats['threads']} python scripts/train_demo.py {stats['command']}` "
        + ("(deterministic for the same library code and thread count)." if args.steps
           else "(schedule by the clock, so not bit-reproducible)."),
        "",
        "## Test evaluation",
        "",
        (f"Test split (sentences *and* voices never heard in training, never used for a choice): "
        f"{n_test['gender']} gender clips, {n_test['language']} language clips, first 3 s, evaluated on the "
        "saved float16 weights with"),
        "`LogitLens` (accuracy = argmax over the label tokens at the last layer and token).",
        "",
    ]
    for track in TASKS:
        labels = al.sakura_task(track).labels
        lines += [f"### {track}", "", "| format | overall | audio masked | " + " | ".join(labels) + " |",
                  "|---" * (len(labels) + 3) + "|"]
        for fmt in FORMATS:
            r = report[track][fmt]
            lines.append(f"| {fmt} | {r['accuracy']:.3f} | {r['masked']:.3f} | "
                         + " | ".join(f"{r['per_class'][lab]:.2f}" for lab in labels) + " |")
        lines += ["", "Information score (Eq. 2) per layer at the last token (layer 0 = embeddings):", "",
                  "| format | " + " | ".join(f"ℓ={layer}" for layer in range(n_layers + 1)) + " | critical layer |",
                  "|---" * (n_layers + 3) + "|"]
        for fmt in FORMATS:
            r = report[track][fmt]
            lines.append(f"| {fmt} | " + " | ".join(f"{s:.2f}" for s in r["info"]) + f" | {r['critical']:.2f} |")
        lines.append("")
    lines += [
        "## Validation split",
        "",
        "The split the choices were made on, for comparison (same clip counts, P1/P2/P3):",
        "",
        "| attribute | accuracy | audio masked | first block at the final score |",
        "|---|---|---|---|",
    ]
    for track in TASKS:
        rows = [validation[track][fmt] for fmt in FORMATS]
        lines.append(f"| {track} | " + " | ".join("/".join(f"{r[k]:{spec}}" for r in rows)
                                                  for k, spec in (("accuracy", ".2f"), ("masked", ".2f"), ("first", "d")))
                     + " |")
    lines += [
        "",
        "## Test fixtures",
        "",
        (f"`tests/fixtures/demo/`: {len(fixtures['gender']['correct'])} gender and "
        f"{len(fixtures['language']['correct'])} language held-out clips of the validation split (another seed),"),
        (f"16 kHz Ogg Vorbis. Accuracy there (P3): gender {fixtures['gender']['accuracy']:.3f}, "
        f"language {fixtures['language']['accuracy']:.3f}."),
        "",
    ]
    return "\n".join(lines)


# Seeds of the test clips and the fixtures, whichever seed trains.
TEST_SEED, FIXTURE_SEED = 1001, 2001


def validation_clips(seed: int, args: argparse.Namespace) -> dict[str, list[Clip]]:
    """The validation clips a model trained at ``seed`` is judged on (drawn at ``seed`` + 1000)."""
    return {t: synth(t, n, seed + 1000, "validation") for t, n in zip(TASKS, args.test_per_label)}


def train_seed(seed: int, args: argparse.Namespace, validation_data: dict[str, list[Clip]]) -> dict:
    """Train the recipe at ``seed`` and save the model to ``args.out``; the training stats."""
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    t0 = time.time()
    train_data = {t: synth(t, n, seed, "train") for t, n in zip(TASKS, args.train_per_label)}
    train_data["language"] += word_salad(args.salad_per_label, seed)
    print(f"seed {seed}: synthesized in {time.time() - t0:.0f}s", flush=True)
    model = build_model(seed)
    print(f"{sum(p.numel() for p in model.hf_model.parameters()) / 1e6:.2f} M parameters", flush=True)
    watch = {t: v[:: max(1, len(v) // 96)] for t, v in validation_data.items()}  # ~96 clips each
    stats = train(model, train_data, args, watch)
    save(model, args.out)
    return stats | {"seed": seed, "threads": torch.get_num_threads()}


def select_seed(args: argparse.Namespace) -> dict:
    """Train each of ``args.seeds`` in turn and keep the first whose saved model meets every goal
    on the validation split (the last one tried if none does); its stats, with every try's goals."""
    tried = []
    for seed in args.seeds:
        validation_data = validation_clips(seed, args)
        stats = train_seed(seed, args, validation_data)
        model = al.HookedAudioLM.from_pretrained(str(args.out), torch_dtype=torch.float32)  # as shipped
        rows = goals(evaluate_split(model, validation_data, f"validation, seed {seed}"), ARCH["n_layers"])
        tried.append({"seed": seed, "goals": [[goal, value, ok] for goal, value, ok in rows]})
        if all(ok for *_, ok in rows):
            break
    return stats | {"selection": tried}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Seed 1: the first of 0, 1 whose model met every goal on the validation split (the card
    # shows both tries).
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="candidate seeds, tried in order: the first whose model meets every goal on the "
                             "validation split is kept (instead of --seed)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=None,
                        help="train for this long instead of --steps (schedule by the clock)")
    parser.add_argument("--out", type=Path, default=ROOT / "src/audiolens/models/demo")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests/fixtures/demo")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--weight-decay", type=float, default=0.1, help="AdamW's")
    parser.add_argument("--language-share", type=float, default=0.85)
    parser.add_argument("--augment-share", type=float, default=0.5, help="share of clips augmented")
    parser.add_argument("--train-per-label", type=int, nargs=2, default=(1000, 600), metavar=("GENDER", "LANGUAGE"))
    parser.add_argument("--noise", type=float, nargs=3, default=(0.6, 0.0, 20.0), metavar=("SHARE", "SNR_LO", "SNR_HI"),
                        help="share of training clips with white noise added, at an SNR drawn from SNR_LO..SNR_HI dB")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="skip training: evaluate the checkpoint in --out (trained by this recipe, which wrote "
                             "its training.json; pass the arguments it was trained with) and write its "
                             "card and fixtures again")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="print held-out accuracy and information scores every this many steps")
    parser.add_argument("--salad-per-label", type=int, default=600, help="random-word language clips per label")
    parser.add_argument("--test-per-label", type=int, nargs=2, default=(100, 60), metavar=("GENDER", "LANGUAGE"))
    for key, value in ARCH.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value, help="model size")
    args = parser.parse_args()
    ARCH.update({key: getattr(args, key) for key in ARCH})
    args.argv = sys.argv[1:]
    if args.minutes is not None:
        args.steps = None
    # Results are bit-for-bit only for the same thread count, so the card records it.
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))

    t0 = time.time()
    n_train = {t: n * len(al.sakura_task(t).labels) for t, n in zip(TASKS, args.train_per_label)}
    # Held-out clips come from other seeds than training, so pitch/speed draws differ too.
    if args.evaluate_only:
        stats = json.loads((args.out / "training.json").read_text(encoding="utf-8"))
    elif args.seeds:
        stats = select_seed(args)
    else:
        stats = train_seed(args.seed, args, validation_clips(args.seed, args))
    if not args.evaluate_only:
        stats["command"] = " ".join(args.argv)
        (args.out / "training.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    validation_data = validation_clips(stats.get("seed", args.seed), args)
    test_data = {t: synth(t, n, TEST_SEED, "test") for t, n in zip(TASKS, args.test_per_label)}
    fixture_data = {t: synth(t, n, FIXTURE_SEED, "validation") for t, n in zip(TASKS, (8, 2))}

    # Everything below uses the weights as shipped (float16, reloaded in float32).
    from audiolens.models.pretrained import demo

    model = al.HookedAudioLM.from_pretrained(str(args.out), torch_dtype=torch.float32)
    n_params = sum(p.numel() for p in model.hf_model.parameters())
    text, audio = model.hf_model.config.text_config, model.hf_model.config.audio_config
    ARCH.update(n_layers=text.num_hidden_layers, d_model=text.hidden_size, n_heads=text.num_attention_heads,
                audio_layers=audio.encoder_layers, audio_d_model=audio.d_model)  # the card describes what was saved
    validation = evaluate_split(model, validation_data, "validation")
    for goal, value, ok in goals(validation, ARCH["n_layers"]):
        print(f"goal {'met' if ok else 'MISSED'}: {goal}: {value}", flush=True)
    report = evaluate_split(model, test_data, "test")
    breakdown = gender_breakdown(model, test_data)

    write_fixtures(fixture_data, args.fixtures)
    model = demo() if args.out == ROOT / "src/audiolens/models/demo" else model
    fixtures = {}
    for track, clips in read_fixtures(args.fixtures).items():
        res = evaluate(model, track, clips, "P3")
        fixtures[track] = {"accuracy": res.accuracy(), "correct": res.correct}
        print("fixtures", track, f"{res.accuracy():.3f}", flush=True)

    size_mb = sum(f.stat().st_size for f in args.out.iterdir() if f.name != "README.md") / 1e6
    text = card(args, stats, report, validation, breakdown, fixtures, n_params, n_train,
                {t: len(v) for t, v in test_data.items()}, size_mb)
    (args.out / "README.md").write_text(text, encoding="utf-8")
    print(f"done in {(time.time() - t0) / 60:.1f} min; {size_mb:.1f} MB in {args.out}", flush=True)


if __name__ == "__main__":
    main()
