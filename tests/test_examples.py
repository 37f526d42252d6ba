"""The example scripts run end to end (they synthesize speech, so they need espeak-ng)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
@pytest.mark.parametrize("script", ["gender_lens.py", "mask_and_enrich.py"])
def test_example_runs(script, tmp_path):
    args = [sys.executable, str(ROOT / "examples" / script)]
    if script == "gender_lens.py":
        args += ["--out", str(tmp_path / "plot.png"), "--per-label", "3"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "accuracy" in done.stdout
    if script == "gender_lens.py":
        assert (tmp_path / "plot.png").stat().st_size > 10_000
