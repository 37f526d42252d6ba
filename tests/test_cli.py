"""The command line's user errors: one line on standard error, exit code 2, no traceback, found
before torch is imported; ``--debug`` shows the traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audiolens.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
# Runs main() in a fresh interpreter, then says on stdout which heavy modules it imported.
PROBE = (
    "import sys; from audiolens.cli import main; rc = main(sys.argv[1:]); "
    "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules)); sys.exit(rc)"
)


def cli(tmp_path: Path, *args: str, offline: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HOME": str(tmp_path / "hf-home")}
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
        timeout=120, check=False, cwd=tmp_path,
    )


@pytest.fixture
def places(tmp_path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "no-config").mkdir()
    return {"file": str(tmp_path / "a-file"), "folder": str(tmp_path / "no-config")}


CASES = [
    # (arguments, what the one line says); {file} and {folder} are filled in from ``places``
    (["reproduce", "--model", "some/hub-id", "--out", "o"],
     ("model 'some/hub-id' could not be found locally or on the hub: no folder 'some/hub-id' "
      "here, not in the Hugging Face cache")),
    (["reproduce", "--model", "a/b/c"], "--model a/b/c: no such folder here, and not a hub id"),
    (["reproduce", "--model", "{folder}"], "the folder has no config.json"),
    (["reproduce", "--model", "{file}"], "is a file; give a checkpoint folder or a hub id"),
    (["reproduce", "--out", "{file}"], "--out {file} is a file; give a folder"),
    (["reproduce", "--out", "{file}/sub"], "{file} is a file, so no folder can be made there"),
    (["synth", "--out", "{file}"], "--out {file} is a file"),
    (["reproduce", "--seed", "-1"], "argument --seed: -1 is not a seed: an integer 0..4294967295"),
    (["reproduce", "--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
    (["reproduce", "--seed", "4294967296"], "argument --seed: 4294967296 is not a seed"),
    (["reproduce", "--per-label", "0"], "argument --per-label: 0 is not a positive integer"),
    (["synth", "--out", "s", "--per-label", "0"], "argument --per-label: 0 is not a positive"),
    (["reproduce", "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    (["reproduce", "--wait", "nan"], "argument --wait: nan is not a number of seconds"),
    (["reproduce", "--data", "missing"], "--data missing: no such folder"),
    (["reproduce", "--data", "{file}"], "--data {file} is a file"),
    (["reproduce", "--prompts", "P1"], "unrecognized arguments: --prompts P1"),
]


@pytest.mark.parametrize("args, said", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_user_error_is_one_line_and_exit_code_2_before_torch_is_imported(
    tmp_path, places, args, said
):
    args = [a.format(**places) for a in args]
    run = cli(tmp_path, *args)
    command = args[0]
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr  # one line, no traceback
    assert run.stderr.startswith(f"audiolens {command}: error: "), run.stderr
    assert said.format(**places) in run.stderr
    if run.stdout:  # main() returned (argparse exits before the probe can print)
        assert run.stdout.strip() == "[]"  # neither torch, transformers nor numpy loaded
    assert not (tmp_path / "o").exists()  # nothing written


def test_debug_shows_the_traceback(tmp_path, places):
    run = cli(tmp_path, "reproduce", "--out", places["file"], "--debug")
    assert run.returncode == 1
    assert run.stderr.startswith("Traceback (most recent call last):")
    assert run.stderr.rstrip().endswith(f"CommandError: --out {places['file']} is a file; give a folder (it is made if missing)")
    run = cli(tmp_path, "--debug", "reproduce", "--model", "some/hub-id")  # before the command too
    assert "Traceback" in run.stderr and "could not be found locally or on the hub" in run.stderr


def test_unreadable_data_is_one_line(tmp_path, capsys):
    track = tmp_path / "sakura" / "data" / "Gender"
    (track / "audio").mkdir(parents=True)
    (track / "metadata.csv").write_bytes(b"file,attribute_label\n\xff\xfe garbage\n")
    assert main(["reproduce", "--data", str(tmp_path / "sakura"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.match(rf"audiolens reproduce: error: {re.escape(str(track / 'metadata.csv'))}: cannot read CSV", err)
    (track / "metadata.csv").unlink()
    (tmp_path / "sakura" / "data" / "Gender").rename(tmp_path / "sakura" / "data" / "Other")
    assert main(["reproduce", "--data", str(tmp_path / "sakura"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"audiolens reproduce: error: no SAKURA track under {tmp_path / 'sakura'}\n"
    assert not (tmp_path / "o" / "records").exists()
