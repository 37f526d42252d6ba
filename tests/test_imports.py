"""``import audiolens`` stays lean: every public name loads its module on first use."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import audiolens as al

INIT = Path(al.__file__)
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "transformer_lens", "nnsight", "matplotlib", "pandas", "scipy",
         "soundfile", "tqdm")


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_audiolens_imports_nothing_heavy():
    loaded = run(f"import sys, audiolens; print(*[m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded == ""


def test_readme_example_runs_without_matplotlib():
    """``pip install audiolens`` (no ``plot`` extra) runs the README's notebook example (its first
    code block; tests/test_docs.py runs every block); with ``audiolens.study.reproduce`` imported
    first, whose name the package's function must keep."""
    readme = (ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)[0]
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # any import of it fails\n"
        "import audiolens.study.reproduce\n"
        "import audiolens as al\n"
        f"exec({example!r})\n"
        "print(callable(al.reproduce), al.reproduce.__module__)\n"
    )
    assert run(code) == "True audiolens.study.reproduce"


def test_every_public_name_resolves():
    for name in al.__all__:
        obj = getattr(al, name)
        assert obj is not None, name
    assert set(al.__all__) <= set(dir(al))
    assert al.tables.__name__ == "audiolens.study.tables"  # any submodule, as with eager imports
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        al.no_such_name  # noqa: B018


def test_type_checking_imports_match_the_lazy_table():
    """The ``if TYPE_CHECKING:`` imports (what type checkers read) name exactly the exports."""
    tree = ast.parse(INIT.read_text())
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    static: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            static[alias.name] = node.module or alias.name
    lazy = {name: module for module, names in al._EXPORTS.items() for name in names}
    lazy |= {m: m for m in al._SUBMODULES}
    assert static == lazy
    assert sorted(al.__all__) == sorted(lazy)


def test_figures_without_matplotlib_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.delitem(sys.modules, "audiolens.study.figures", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'audiolens\[plot\]'"):
        import audiolens.study.figures  # noqa: F401


def test_reproduce_skips_figures_without_matplotlib(monkeypatch):
    from audiolens.study.reproduce import draw_figures

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.warns(UserWarning, match=r"figures skipped.*audiolens\[plot\]"):
        assert draw_figures(study=None) == {}
