"""The documentation site (mkdocs.yml) builds in strict mode, and strict mode catches breakage."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter")
ROLE_TEXT = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj):")
IMAGE = re.compile(r'<img [^>]*src="data:image/png;base64,')
MISSING = [m for m in DOCS_TOOLS if importlib.util.find_spec(m.split(".")[0]) is None
           or importlib.util.find_spec(m) is None]

if MISSING:
    if os.environ.get("CI"):  # CI installs the docs extra; a skip there would hide a broken site
        pytest.fail(f"docs tools missing in CI: {MISSING}; install '.[docs]'", pytrace=False)
    pytest.skip(f"docs tools not installed ({', '.join(MISSING)}): pip install -e '.[docs]'",
                allow_module_level=True)


def build(site: Path, config: Path = ROOT / "mkdocs.yml", **overrides: object) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``, with config keys overridden."""
    script = (
        "import logging, sys\n"
        "from mkdocs.commands.build import build\n"
        "from mkdocs.config import load_config\n"
        "from mkdocs.exceptions import Abort\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')\n"
        f"cfg = load_config({str(config)!r}, site_dir={str(site)!r}, strict=True,"
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
    # long signatures are formatted one parameter a line (ruff, the docs extra), not cut off
    signatures = [re.sub(r"<[^>]+>", "", sig) for page in (site / "api").glob("*/index.html")
                  for sig in re.findall(r'<div class="doc-signature highlight"><pre>(.*?)</pre>',
                                        page.read_text(), flags=re.DOTALL)]
    assert any("(\n    " in sig for sig in signatures), signatures[:3]
    assert max(len(line) for sig in signatures for line in sig.splitlines()) <= 100
    # the docstrings' Sphinx roles became links (docs/griffe_roles.py), none is left as raw text
    assert ('href="../errors/#audiolens.errors.TunedLensFileError"><code>TunedLensFileError</code>'
            in lens)  # a role pointing to another page
    for page in (site / "api").glob("*/index.html"):
        raw = ROLE_TEXT.findall(page.read_text())
        assert not raw, f"raw Sphinx roles on {page.parent.name}: {raw[:5]}"
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        page = site / "notebooks" / nb.stem / "index.html"
        assert page.is_file(), f"{nb.name} not rendered"
        html = page.read_text()  # rendered with the outputs it is stored with
        assert "jp-OutputArea-output" in html, f"{nb.name} rendered without outputs"
        # a figure the notebook draws is an image on its page
        assert bool(IMAGE.search(html)) == ('"image/png"' in nb.read_text()), nb.name
    causal = (site / "notebooks" / "05_causal" / "index.html").read_text()
    assert len(IMAGE.findall(causal)) >= 4  # knockout, DLA, patching, token lens


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


def test_strict_build_fails_on_a_bad_role_in_a_docstring(tmp_path):
    # a copy of the package with two roles that name nothing, rendered through the real config
    shutil.copytree(ROOT / "src" / "audiolens", tmp_path / "src" / "audiolens",
                    ignore=shutil.ignore_patterns("__pycache__"))
    tasks = tmp_path / "src" / "audiolens" / "tasks.py"
    source = tasks.read_text()
    assert source.startswith('"""')
    tasks.write_text('"""See :class:`NoSuchTask` and :meth:`Task.no_such_method`.\n\n' + source[3:])
    config = (ROOT / "mkdocs.yml").read_text()
    assert "paths: [src]" in config and "- docs/griffe_roles.py:" in config
    config = config.replace("paths: [src]", f"paths: [{tmp_path / 'src'}]")
    config = config.replace("- docs/griffe_", f"- {ROOT / 'docs'}/griffe_")
    (tmp_path / "mkdocs.yml").write_text(config)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Tasks\n\n::: audiolens.tasks\n")
    out = build(tmp_path / "site", config=tmp_path / "mkdocs.yml", docs_dir=str(docs),
                nav=[{"Home": "index.md"}])
    assert out.returncode != 0, "strict build passed with a role that names nothing"
    for culprit in ("'NoSuchTask'", "'audiolens.tasks.Task.no_such_method'"):
        assert culprit in out.stdout + out.stderr, f"{culprit} not reported:\n{out.stderr}"


def test_the_gallery_is_what_its_script_writes_and_every_image_exists():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "scripts" / "make_gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    page = (ROOT / "docs" / "gallery.md").read_text()
    assert page == gallery.page(), "docs/gallery.md is stale: run scripts/make_gallery.py"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert len(images) == len(gallery.ENTRIES) >= 14
    for image in images:
        path = ROOT / "docs" / image
        assert path.is_file() and path.stat().st_size > 5000, f"gallery image missing: {image}"
    assert any(item == {"Gallery": "gallery.md"} for item in _nav())


def _nav() -> list:
    import yaml

    text = re.sub(r"!!python/\S+", "", (ROOT / "mkdocs.yml").read_text())
    return yaml.safe_load(text)["nav"]


def test_the_index_and_reproduce_pages_show_figures():
    for name in ("index.md", "reproduce.md"):
        page = (ROOT / "docs" / name).read_text()
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
        assert images, f"docs/{name} shows no figure"
        for image in images:
            assert (ROOT / "docs" / image).is_file(), f"docs/{name}: {image} missing"
