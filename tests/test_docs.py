"""The Python examples in the README and docs run as written."""

import re
from pathlib import Path

import pytest

import audiolens as al

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/index.md", "docs/quickstart.md", "docs/questions.md", "docs/interventions.md", "docs/adapters.md",
         "docs/causal.md", "docs/scale.md", "docs/architecture.md", "docs/errors.md", "docs/whole-model.md",
         "docs/probes.md", "docs/listening.md"]


def python_blocks(path: Path) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL))


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page, monkeypatch):
    code = python_blocks(ROOT / page)
    assert code.strip(), f"{page} has no python example"
    monkeypatch.setattr(al, "ARCHITECTURES", dict(al.ARCHITECTURES))
    exec(compile(code, page, "exec"), {"__name__": "docs"})


def test_the_errors_page_lists_every_error_and_warning():
    """docs/errors.md has a row for each class in audiolens.errors, with its builtin."""
    import inspect

    from audiolens import errors

    page = (ROOT / "docs" / "errors.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \|(.*)$", page, flags=re.MULTILINE))
    classes = {
        name: cls for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, (errors.AudiolensError, errors.AudiolensWarning))
        and cls not in (errors.AudiolensError, errors.AudiolensWarning)
    }
    assert sorted(rows) == sorted(classes)
    for name, cls in classes.items():
        if issubclass(cls, errors.AudiolensError):  # the builtin it stands for, as the page says
            builtins = re.findall(r"`(\w+)`", rows[name].split("|")[0])
            assert builtins and set(builtins) <= {b.__name__ for b in cls.__mro__}, (name, builtins)
