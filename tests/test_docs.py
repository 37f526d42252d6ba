"""The Python examples in the README and docs run as written."""

import re
from pathlib import Path

import pytest

import audiolens as al

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/quickstart.md", "docs/interventions.md", "docs/adapters.md", "docs/causal.md",
         "docs/scale.md", "docs/whole-model.md"]


def python_blocks(path: Path) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL))


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page, monkeypatch):
    code = python_blocks(ROOT / page)
    assert code.strip(), f"{page} has no python example"
    monkeypatch.setattr(al, "ARCHITECTURES", dict(al.ARCHITECTURES))
    exec(compile(code, page, "exec"), {"__name__": "docs"})
