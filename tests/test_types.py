"""The static type check: mypy on src/audiolens (configured in pyproject.toml) finds no error.

Every module is checked with its function bodies (``check_untyped_defs``); the modules that define
the names exported from ``audiolens/__init__.py`` are checked with mypy's strict flags.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import audiolens as al

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mypy brings tomli
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def strict_modules() -> set[str]:
    """The modules of the override that turns the strict flags on."""
    found = [o for o in CONFIG.get("overrides", []) if o.get("disallow_untyped_defs")]
    assert len(found) == 1, "expected one mypy override with the strict flags"
    module = found[0]["module"]
    return {module} if isinstance(module, str) else set(module)


def test_mypy_finds_no_error(tmp_path):
    pytest.importorskip("mypy", reason="mypy comes with the test extra")
    # A fresh cache each time: the result never depends on an earlier run's files.
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert out.returncode == 0 and not errors, (
        f"mypy found {len(errors)} error(s) in src/audiolens:\n" + (out.stdout + out.stderr).strip()
    )


def test_public_api_is_checked_strictly():
    """Each module that defines an exported name (and each exported package) is in the strict
    override, so a new public name cannot slip out of the strict check."""
    strict = strict_modules()
    wanted = {"audiolens"} | {f"audiolens.{m}" for m in al._SUBMODULES if m in ("analysis", "lenses", "study")}
    for module, names in al._EXPORTS.items():
        home = importlib.import_module(f"audiolens.{module}")
        for name in names:
            value = getattr(home, name)
            wanted.add(getattr(value, "__module__", None) or home.__name__)
    wanted = {m for m in wanted if m.startswith("audiolens")}
    assert wanted <= strict, f"exported names defined outside the strict list: {sorted(wanted - strict)}"


def test_strict_list_names_real_modules():
    for module in strict_modules():
        importlib.import_module(module)
