"""Train the small demo model shipped as ``audiolens.models.demo()``.

The recipe, end to end on a CPU:

1. synthesize speech with espeak-ng (``audiolens.data.synth``): English sentences in male and
   female voices for ``gender``, eight languages for ``language``, from the *train* split of
   sentences and voices, plus language clips that speak random word sequences drawn from the
   train sentences (more variety than the sentences alone);
2. build a Qwen2-Audio-architecture model from a small config (audio encoder 3 x 128, decoder
   6 x 128) with a 384-token byte-level BPE in which every label word is one token;
3. pretrain its audio encoder and projector with pooled linear heads (gender, language), which
   learns in a fraction of the steps the answer-token loss needs;
4. train the whole model on exactly the inputs ``HookedAudioLM.prepare`` builds for the three
   Table I prompt formats, with the loss on the next token after the prompt (the label word's
   first token) plus the pooled heads' loss; the heads are not part of the saved model;
5. save it in half precision with its processor, reload what was saved, evaluate it on the
   *test* split (sentences and voices never heard in training), write test fixtures and a data
   card.

Deterministic for a seed with ``--steps`` (the default); with ``--minutes`` the learning-rate
schedule follows the clock instead (the data card records the step count reached).

Example:
    python scripts/train_demo.py --seed 0
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
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
from transformers.masking_utils import create_bidirectional_mask

import audiolens as al
from audiolens.data.synth import (
    LANGUAGES,
    SAMPLE_RATE,
    generate,
    load_sentences,
    plan,
    render,
    split_items,
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
ARCH = dict(n_layers=6, d_model=128, n_heads=4, audio_layers=3, audio_d_model=128)


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
    vocab = {lab: [w for t in split_items(load_sentences(code), "train") for w in words(code, t)]
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


class PooledHeads(torch.nn.Module):
    """Linear gender and language classifiers on the mean of the projected audio tokens.

    Training aid only (never saved): they give the audio encoder a direct gradient, where the
    answer-token loss reaches it only through six decoder layers of attention.
    """

    def __init__(self, model: al.HookedAudioLM):
        super().__init__()
        hidden = model.hf_model.config.text_config.hidden_size
        # (frames after the convolutions, encoder output length) per mel-frame count.
        self.output_lengths = model.hf_model.model.audio_tower._get_feat_extract_output_lengths
        self.heads = torch.nn.ModuleDict(
            {t: torch.nn.Linear(hidden, len(al.sakura_task(t).labels)) for t in TASKS}
        )

    def forward(self, track: str, projected: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
        n = self.output_lengths(feature_mask.sum(-1))[1]
        keep = (torch.arange(projected.shape[1]) < n[:, None]).to(projected.dtype)[..., None]
        return self.heads[track]((projected * keep).sum(1) / keep.sum(1))


def audio_features(model: al.HookedAudioLM, wavs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Whisper features and their frame mask, padded to the 3-second window."""
    f = model.processor.feature_extractor(
        wavs, sampling_rate=SAMPLE_RATE, padding="max_length", return_attention_mask=True, return_tensors="pt"
    )
    return f["input_features"], f["attention_mask"]


def project_audio(model: al.HookedAudioLM, features: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
    """Audio encoder then projector, the path ``prepare``'s audio takes into the decoder.

    Padding frames are masked out of the encoder's attention exactly as in the full model.
    """
    inner = model.hf_model.model
    n = inner.audio_tower._get_feat_extract_output_lengths(feature_mask.sum(-1))[0]
    valid = (torch.arange(features.shape[-1] // 2)[None] < n[:, None]).long()
    mask = create_bidirectional_mask(
        config=inner.audio_tower.config, inputs_embeds=features.new_zeros(*valid.shape, 1), attention_mask=valid
    )
    return inner.multi_modal_projector(inner.audio_tower(features, attention_mask=mask).last_hidden_state)


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


def pretrain(model: al.HookedAudioLM, heads: PooledHeads, data: dict[str, list[Clip]], args) -> dict:
    """Stage 1: audio encoder and projector with the pooled heads only (no decoder: cheap steps)."""
    rng = np.random.default_rng([args.seed, 1])
    inner = model.hf_model.model
    params = [p for m in (inner.audio_tower, inner.multi_modal_projector, heads) for p in m.parameters()]
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=args.pretrain_lr, weight_decay=0.01)
    labels = {t: {lab: k for k, lab in enumerate(al.sakura_task(t).labels)} for t in TASKS}
    model.hf_model.train()
    start, losses = time.time(), []
    for step in range(args.pretrain_steps):
        track, clips = pick(data, args, rng)
        features, mask = audio_features(model, [maybe_augment(c.wav, rng, args.augment_share) for c in clips])
        for group in opt.param_groups:
            group["lr"] = lr_at(step / args.pretrain_steps, args.pretrain_lr, step)
        logits = heads(track, project_audio(model, features, mask), mask)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([labels[track][c.label] for c in clips]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(f"pretrain {step + 1} loss {np.mean(losses[-100:]):.3f} {time.time() - start:.0f}s", flush=True)
    return {"steps": args.pretrain_steps, "seconds": time.time() - start, "final_loss": float(np.mean(losses[-200:]))}


def train(model: al.HookedAudioLM, heads: PooledHeads, data: dict[str, list[Clip]], args) -> dict:
    """Stage 2: the whole model on the answer token, plus the pooled heads' loss."""
    rng = np.random.default_rng(args.seed)
    tasks = {t: al.sakura_task(t) for t in TASKS}
    targets = {t: torch.tensor(al.label_token_ids(model.tokenizer, tasks[t].labels)) for t in TASKS}
    params = list(model.hf_model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay)
    projected: list[torch.Tensor] = []
    hook = model.hf_model.model.multi_modal_projector.register_forward_hook(lambda m, i, o: projected.append(o))
    model.hf_model.train()
    start, losses, step = time.time(), [], 0
    try:
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
            projected.clear()
            logits = model(batch, positions="last")[:, 0].float()
            loss = torch.nn.functional.cross_entropy(logits, targets[track][batch.targets])
            aux = heads(track, projected[0], batch.inputs["feature_attention_mask"])
            loss_all = loss + args.aux_weight * torch.nn.functional.cross_entropy(aux, batch.targets)
            opt.zero_grad(set_to_none=True)
            loss_all.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % 100 == 0:
                print(f"step {step} progress {progress:.2f} loss {np.mean(losses[-100:]):.3f} "
                      f"{time.time() - start:.0f}s", flush=True)
            if args.eval_every and step % args.eval_every == 0 and args.watch:
                model.hf_model.eval()
                with torch.no_grad():
                    for track, clips in args.watch.items():
                        res = evaluate(model, track, clips, "P1")
                        print(f"  watch {track} acc {res.accuracy():.2f} info",
                              np.round(res.info_scores(), 2), flush=True)
                model.hf_model.train()
    finally:
        hook.remove()
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


def card(args: argparse.Namespace, pre_stats: dict, stats: dict, report: dict, fixtures: dict, n_params: int,
         n_train: dict, n_test: dict, size_mb: float) -> str:
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
        f"- {n_train['gender']} gender clips and {n_train['language']} language clips of the train sentences",
        f"  ({len(split_items(load_sentences('en'), 'train'))} per language), plus {args.salad_per_label * 8} language clips speaking 4-10 random words drawn",
        "  from those sentences (Chinese: character pairs), so that sentence identity is no shortcut.",
        f"- Augmentation, on {args.augment_share:.0%} of the clips per step: a random EQ (smooth random",
        "  frequency response), resampling by 0.92-1.08 (pitch and formants move together), a random",
        "  window of 1-3 s (half the time the whole clip), random gain and faint noise; the other",
        "  clips are used as they are (first 3 s).",
        "- Init: HF defaults, except fan-in scaled weights (std 1/sqrt(fan_in)) in the audio encoder",
        "  and projector and a Whisper sinusoid table for the encoder's frozen positions.",
        "- Stage 1, audio encoder and projector only: linear gender and language heads on the mean of",
        f"  the projected audio tokens, {pre_stats['steps']} steps, peak lr {args.pretrain_lr:g}, "
        f"{pre_stats['seconds'] / 60:.1f} min (final loss {pre_stats['final_loss']:.3f}).",
        "- Stage 2, the whole model on inputs exactly as `HookedAudioLM.prepare` builds them, prompt",
        f"  format P1/P2/P3 at random, language asked in {args.language_share:.0%} of batches. Loss: cross-entropy",
        "  of the next token at the last position against the label word's first token (with leading",
        f"  space), plus {args.aux_weight:g} x the pooled heads' loss. The heads are dropped afterwards: the",
        "  checkpoint is a plain `Qwen2AudioForConditionalGeneration`.",
        f"- AdamW (weight decay {args.weight_decay:g}), peak lr {args.lr:g}, 100 warm-up steps then cosine decay, batch",
        f"  {args.batch_size}, gradient clipping 1.0; {stats['steps']} steps in {stats['seconds'] / 60:.1f} min on 2 CPU",
        f"  cores (final answer-token loss {stats['final_loss']:.3f}).",
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
    parser.add_argument("--pretrain-steps", type=int, default=2000, help="stage 1 steps (encoder and heads)")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=2000, help="stage 2 steps (whole model)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="train for this long instead of --steps (schedule by the clock)")
    parser.add_argument("--out", type=Path, default=ROOT / "src/audiolens/models/demo")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests/fixtures/demo")
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW's, in stage 2")
    parser.add_argument("--language-share", type=float, default=0.7)
    parser.add_argument("--augment-share", type=float, default=0.5, help="share of clips augmented")
    parser.add_argument("--aux-weight", type=float, default=0.5, help="weight of the pooled heads' loss in stage 2")
    parser.add_argument("--train-per-label", type=int, nargs=2, default=(1000, 600), metavar=("GENDER", "LANGUAGE"))
    parser.add_argument("--noise", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("SHARE", "SNR_LO", "SNR_HI"),
                        help="share of training clips with white noise added, at an SNR drawn from SNR_LO..SNR_HI dB")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="keep the audio encoder at its initial weights (the decoder does the listening)")
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
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))

    t0 = time.time()
    train_data = {t: synth(t, n, args.seed, "train") for t, n in zip(TASKS, args.train_per_label)}
    n_sentences = {t: len(v) for t, v in train_data.items()}
    train_data["language"] += word_salad(args.salad_per_label, args.seed)
    # Test clips come from another seed, so pitch/speed draws differ from training too.
    test_data = {t: synth(t, n, args.seed + 1000, "test") for t, n in zip(TASKS, args.test_per_label)}
    fixture_data = {t: synth(t, n, args.seed + 2000, "test") for t, n in zip(TASKS, (8, 2))}
    print(f"synthesized in {time.time() - t0:.0f}s", flush=True)

    # A slice of the test split to watch during training (--eval-every); not used for choices.
    args.watch = {t: v[:: max(1, len(v) // 96)] for t, v in test_data.items()}
    model = build_model(args.seed)
    n_params = sum(p.numel() for p in model.hf_model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters", flush=True)
    heads = PooledHeads(model)
    if args.freeze_encoder:
        model.hf_model.model.audio_tower.requires_grad_(False)
    pre_stats = pretrain(model, heads, train_data, args)
    stats = train(model, heads, train_data, args)
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
    text = card(args, pre_stats, stats, report, fixtures, n_params, n_sentences, {t: len(v) for t, v in test_data.items()}, size_mb)
    (args.out / "README.md").write_text(text, encoding="utf-8")
    print(f"done in {(time.time() - t0) / 60:.1f} min; {size_mb:.1f} MB in {args.out}", flush=True)


if __name__ == "__main__":
    main()
