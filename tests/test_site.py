"""The documentation site (mkdocs.yml) builds in strict mode, and strict mode catches breakage."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter")
MISSING = [m for m in DOCS_TOOLS if importlib.util.find_spec(m.split(".")[0]) is None
           or importlib.util.find_spec(m) is None]

if MISSING:
    if os.environ.get("CI"):  # CI installs the docs extra; a skip there would hide a broken site
        pytest.fail(f"docs tools missing in CI: {MISSING}; install '.[docs]'", pytrace=False)
    pytest.skip(f"docs tools not installed ({', '.join(MISSING)}): pip install -e '.[docs]'",
                allow_module_level=True)


def build(site: Path, **overrides: object) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of mkdocs.yml into ``site``, with config keys overridden."""
    script = (
        "import logging, sys\n"
        "from mkdocs.commands.build import build\n"
        "from mkdocs.config import load_config\n"
        "from mkdocs.exceptions import Abort\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
        f"cfg = load_config({str(ROOT / 'mkdocs.yml')!r}, site_dir={str(site)!r}, strict=True,"
        f" **{overrides!r})\n"
        "try:\n"
        "    build(cfg)\n"
        "except Abort as exc:\n"
        "    sys.exit(str(exc))\n"
    )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_site_builds_strict(tmp_path):
    out = build(tmp_path / "site")
    assert out.returncode == 0, out.stdout + out.stderr
    site = tmp_path / "site"
    lens = (site / "api" / "lenses" / "index.html").read_text()
    assert "LogitLens" in lens and "info_scores" in lens  # rendered from the docstrings
    # an ``Example:`` docstring section rendered as highlighted code, not as Markdown text
    assert '<span class="gp">&gt;&gt;&gt; </span><span class="n">lens</span>' in lens
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), f"{nb.name} not rendered"


def test_every_public_module_has_an_api_page():
    pkg = ROOT / "src" / "audiolens"
    modules = {p.stem for p in pkg.glob("*.py")} | {p.parent.name for p in pkg.glob("*/__init__.py")}
    public = {m for m in modules if not m.startswith("_")} - {"cli"}  # cli: see docs/reproduce.md
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.md")}
    assert public <= pages, f"no docs/api page for {sorted(public - pages)}"
    for m in pages:
        assert f"::: audiolens.{m}" in (ROOT / "docs" / "api" / f"{m}.md").read_text()


BROKEN = {  # one build per kind of failure: a failed ::: stops a build before links are checked
    "links": {
        "See [the missing page](missing.md).": "missing.md",
        "See [a section](#no-such-section).": "no-such-section",
        "See [LogitLens][audiolens.lenses.logit.NoSuchThing].": "audiolens.lenses.logit.NoSuchThing",
    },
    "api": {"::: audiolens.no_such_module": "audiolens.no_such_module"},
}


@pytest.mark.parametrize("kind", BROKEN)
def test_strict_build_fails_on_breakage(kind, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Page\n\n" + "\n\n".join(BROKEN[kind]) + "\n")
    out = build(tmp_path / "site", docs_dir=str(docs), nav=[{"Home": "index.md"}])
    assert out.returncode != 0, f"strict build passed with broken {kind}"
    for culprit in BROKEN[kind].values():
        assert culprit in out.stdout + out.stderr, f"{culprit} not reported:\n{out.stderr}"
