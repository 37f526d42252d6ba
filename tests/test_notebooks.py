"""The notebooks run top to bottom, and the outputs they are stored with are what they print now.

The docs site renders the stored outputs (mkdocs.yml: ``execute: false``); after editing a
notebook or the code it calls, store them again with ``python scripts/execute_notebooks.py``.
"""

import importlib.util
import math
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("execute_notebooks",
                                               ROOT / "scripts" / "execute_notebooks.py")
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5


def test_every_notebook_is_stored_with_outputs_and_a_figure_somewhere():
    images = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(c.outputs for c in code), f"{path.name} is stored without outputs"
        images += sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 5


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=0.02, abs_tol=0.02) for x, y in zip(a, b))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_its_stored_outputs_are_current(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fresh = execute_notebooks.summary(execute_notebooks.execute(path, tmp_path))
    stored = execute_notebooks.summary(nbformat.read(path, as_version=4))
    assert len(fresh) == len(stored), f"{path.name}: cells changed"
    for i, (now, then) in enumerate(zip(fresh, stored)):
        hint = f"{path.name} cell {i}: stored outputs are stale; run scripts/execute_notebooks.py"
        assert [(k, t) for k, t, _ in now] == [(k, t) for k, t, _ in then], hint
        assert all(_close(a, b) for (_, _, a), (_, _, b) in zip(now, then)), hint
