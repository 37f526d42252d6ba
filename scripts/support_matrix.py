"""Write docs/models.md, the support matrix, from a fresh run of the family tests.

Each cell is the outcome of the tests that check that property on that family (tiny random
builds for native families, structural doubles for remote-code ones): nothing here is typed
by hand.

Example:
    python scripts/support_matrix.py            # runs the tests, then writes docs/models.md
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_families.py", "tests/test_remote_code.py", "tests/test_saved_families.py",
         "tests/test_family_qwen_omni.py"]

# column -> test-name fragments that decide it (all must pass)
COLUMNS = {
    "lens = model logits at ℓ = L": ["lens_top_layer_equals_model_logits"],
    "lens = norm + head on hidden states, ℓ < L": ["lens_lower_layers_equal_head_on_hidden_states"],
    "AudioMask = KV-cache reference": ["audio_mask_equals_kv_reference", "audio_mask_leaves_earlier_positions_identical"],
    "Enrich = Eq. 5": ["enrich_equals_eq5"],
    "run_many = separate runs": ["run_many_equals_separate_runs"],
    "shared audio prefix": ["run_formats_equals_run_many"],
    "left padding = row alone": ["padded_rows_equal_rows_alone"],
    "resid_mid exact": ["resid_mid"],
    "component hooks": ["component_hooks_reproduce_the_residual", "editing_components_changes_the_forward_as_said"],
    "nnsight = hooks": ["nnsight_equals_hooks"],
    "encoder hooks = HF layers": ["encoder_hooks_equal_hf_layer_outputs", "frames_are_the_models_own",
                                  "encoder_edit_propagates_like_a_plain_hook"],
    "projector.hook_out = decoder input": ["projector_out_equals_decoder_input_at_audio",
                                           "zeroed_projector_equals_zeroed_audio_embeddings"],
    "EncoderLens = stopped encoder": ["encoder_lens_equals_stopped_encoder", "encoder_lens_composes_with_audio_mask"],
    "encoder nnsight = hooks": ["nnsight_encoder_hooks_equal_hooks"],
    "attention by span = output_attentions": ["attention_to_spans_equals_output_attentions"],
    "head ablation = attention removed": ["head_ablation_of_a_whole_layer_removes_its_attention"],
    "save + from_pretrained": ["round_trip", "loads_only_with_trust_remote_code"],
}


ENCODER_COLUMNS = ("encoder hooks = HF layers", "projector.hook_out = decoder input",
                   "EncoderLens = stopped encoder", "encoder nnsight = hooks")


class Collector:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid] = report.outcome


def family_of(nodeid: str, families: list[str]) -> str | None:
    match = re.search(r"\[(.*)\]", nodeid)
    if not match:
        return None
    param = match.group(1)
    hits = [f for f in families if param == f or param.startswith(f + "-") or param.endswith("-" + f)]
    return max(hits, key=len) if hits else None


def family_table(al) -> list[str]:
    """The families by name: model_type, example checkpoints, audio tokens per second and how
    their inputs differ (from ``audiolens.architectures.names`` and the registry)."""
    from audiolens.architectures.names import EXAMPLE_CHECKPOINTS, INPUT_NOTES, family_title

    lines = ["| family | `model_type` | example checkpoints | audio tokens / s | inputs and quirks |",
             "|---|---|---|---|---|"]
    for name, arch in sorted(al.ARCHITECTURES.items(), key=lambda kv: (family_title(kv[0]).lower(), kv[0])):
        if name.endswith("_thinker"):  # listed with its composite
            continue
        types = f"`{name}`" + (f" (reads `{name}_thinker`)" if arch.submodel else "")
        ids = ", ".join(f"`{c}`" for c in EXAMPLE_CHECKPOINTS.get(name, ()))
        rate = f"{arch.tokens_per_second:g}" if arch.tokens_per_second else "64 per clip"
        notes = INPUT_NOTES.get(name, "").replace("|", "\\|")  # (a bare | would end the cell)
        lines.append(f"| {family_title(name)} | {types} | {ids} | {rate} | {notes} |")
    return lines


def main() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_saved_families import STAND_IN_PROCESSORS

    import audiolens as al
    from audiolens.architectures.names import family_title

    families = sorted(set(al.models.families()) | set(al.ARCHITECTURES))
    collector = Collector()
    paths = [str(ROOT / t) for t in TESTS if (ROOT / t).exists()]
    code = pytest.main(["-q", "-p", "no:cacheprovider", *paths], plugins=[collector])
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for nodeid, outcome in collector.outcomes.items():
        fam = family_of(nodeid, families)
        if fam is None:
            continue
        for column, fragments in COLUMNS.items():
            if any(f in nodeid for f in fragments):
                cells[fam][column].append(outcome)

    def mark(fam: str, column: str) -> str:
        got = cells[fam].get(column)
        if not got and column == "save + from_pretrained" and fam in STAND_IN_PROCESSORS:
            return "n/a"
        if not got:
            return "not tested"
        if column == "resid_mid exact" and al.ARCHITECTURES.get(fam) and al.ARCHITECTURES[fam].resid_mid_unavailable:
            return "refused, with reason" if all(o == "passed" for o in got) else "✗"
        if column in ENCODER_COLUMNS and al.ARCHITECTURES.get(fam) and al.ARCHITECTURES[fam].encoder_missing():
            return "refused, with reason" if all(o == "passed" for o in got) else "✗"
        if any(o == "failed" for o in got):
            return "✗"
        if any(o == "passed" for o in got):  # tests that cannot apply to a build skip
            return "✓"
        return "skipped"

    tested = [f for f in families if cells.get(f)]
    lines = [
        "# Supported models",
        "",
        "Generated by `python scripts/support_matrix.py` from the family registry and a run of the",
        "family tests; do not edit. Load any of these with",
        "`al.HookedAudioLM.from_pretrained(checkpoint)` (remote-code families also need",
        "`trust_remote_code=True`); try one offline with `al.models.tiny(name)`, where `name` is the",
        "`model_type` or the family's name (`al.models.tiny(\"Qwen2.5-Omni\")`).",
        "",
        *family_table(al),
        "",
        "## Support matrix",
        "",
        "Every check compares audiolens with a computation it does not make (the model's own logits",
        "and hidden states, a key/value-cache reference, plain PyTorch hooks), on tiny random-weight",
        "builds (`al.models.tiny(family)`) with randomised norm gains, or, for remote-code models, on",
        "structural doubles of their published code. None of this ran on real weights here.",
        "✓: every test of the cell that applies passed; n/a: the tiny build's processor is an offline",
        "stand-in that HF cannot reload (Granite Speech, Phi-4, Voxtral: the HF processors need",
        "torchaudio or mistral-common files; the Omni thinkers': torchvision).",
        "",
        "| family | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for fam in tested:
        lines.append(f"| {family_title(fam)} (`{fam}`) | " + " | ".join(mark(fam, c) for c in COLUMNS) + " |")
    lines += ["", "## Refused, with the reason given", ""]
    for name, why in sorted(al.architectures.UNSUPPORTED.items()):
        lines.append(f"- `{name}`: {why}")
    lines.append("- encoder-decoder models (Whisper and the like): no decoder-only residual stream over "
                 "audio and prompt tokens for a logit lens to read.")
    notes = [f"- `{name}`: {arch.resid_mid_unavailable}" for name, arch in sorted(al.ARCHITECTURES.items())
             if arch.resid_mid_unavailable]
    notes += [f"- `{name}` (encoder and projector hooks): {arch.encoder_missing()}"
              for name, arch in sorted(al.ARCHITECTURES.items()) if arch.encoder_missing() and name in tested]
    if notes:
        lines += ["", "## Hooks a family cannot offer exactly", "", *notes]
    (ROOT / "docs/models.md").write_text("\n".join(lines) + "\n")
    print(f"wrote docs/models.md ({len(tested)} families); tests exit code {code}")
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
