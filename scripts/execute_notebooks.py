"""Run the notebooks top to bottom and store them with their outputs, for the docs site.

The site (mkdocs-jupyter, ``execute: false``) renders the stored outputs, so the notebooks are
kept with them; tests/test_notebooks.py runs each notebook again and checks that what is stored
is what it prints now (``summary``). Rerun after editing a notebook or the code it calls::

    python scripts/execute_notebooks.py            # every notebook in notebooks/
    python scripts/execute_notebooks.py notebooks/01_quickstart.ipynb

Progress bars and warnings (stderr) are dropped from what is stored, and the execution counts and
timing metadata are cleared, so a rerun that prints the same changes nothing.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """``path`` run in ``workdir``, with the outputs it should be stored with."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # ``--matplotlib=inline``: a returned Figure becomes an image output, as in Jupyter
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=["--matplotlib=inline"]).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs
                        if not (o.output_type == "stream" and o.name == "stderr")]
        cell.execution_count = None
        for out in cell.outputs:
            if "execution_count" in out:
                out.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def summary(nb: nbformat.NotebookNode) -> list[list[tuple[str, Any]]]:
    """Per code cell, its outputs as (kind, text without numbers) pairs, and the numbers apart.

    Images are compared by kind only (their bytes depend on the matplotlib build) and numbers
    with a tolerance by the caller (the last digits depend on the CPU's kernels).
    """
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outs: list[tuple[str, Any]] = []
        for out in cell.outputs:
            if out.output_type == "stream":
                texts = {"stream": out.text}
            elif out.output_type == "error":
                texts = {"error": out.ename}
            else:
                texts = {kind: (data if kind.startswith("text/") else "")
                         for kind, data in out.get("data", {}).items()}
            for kind, text in sorted(texts.items()):
                text = _ADDRESS.sub(" at 0x", "".join(text) if isinstance(text, list) else text)
                outs.append((kind, _NUMBER.sub("#", text),
                             tuple(float(n) for n in _NUMBER.findall(text))))
        cells.append(outs)
    return cells


def main(paths: list[str]) -> None:
    import tempfile

    for path in [Path(p) for p in paths] or NOTEBOOKS:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            nb = execute(path, Path(tmp))
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
