"""The package's layers: no import cycle, and no import from a lower layer to a higher one.

The graph comes from grimp, which reads every ``import`` statement of the source: module-level,
inside functions (lazy) and under ``if TYPE_CHECKING`` alike, so a cycle or an upward import
cannot hide behind laziness or a type hint.

Layers, lowest first; a module may import from its own layer and from the layers below it:

1. core: errors, checks, files, audio, tasks, labels, metrics, batch (no model in sight).
2. data: the data sets. They read clips and tasks (core) and know nothing of models, so they
   sit right above the core and below everything that runs a model.
3. architectures: the family descriptions and input preparation.
4. backends: the hook-site algebra, the PyTorch-hook and nnsight backends.
5. the wrapper (``hooked``) and ``interventions``, side by side: neither imports the other
   (interventions type against :class:`~audiolens.backends.model.HookedModel`).
6. lenses.
7. analysis.
8. models: the tiny random-weight builders and the demo model. They build wrappers (5) and
   load tuned lenses (6); ``study.reproduce`` runs the demo model, so models sit below study.
9. study.
10. cli (and ``__main__``).

``audiolens/__init__.py`` is exempt: it exports every layer's names lazily (importlib). A
package ``__init__`` re-exporting its own children belongs to its package's layer.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGE = "audiolens"

# Each layer is a list of groups; groups of one layer may not import each other.
LAYERS: list[tuple[str, list[list[str]]]] = [
    ("core", [["errors", "checks", "files", "audio", "tasks", "labels", "metrics", "batch"]]),
    ("data", [["data"]]),
    ("architectures", [["architectures"]]),
    ("backends", [["backends"]]),
    ("wrapper and interventions", [["hooked", "hook_points"], ["interventions"]]),
    ("lenses", [["lenses"]]),
    ("analysis", [["analysis"]]),
    ("models", [["models"]]),
    ("study", [["study"]]),
    ("cli", [["cli", "__main__"]]),
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # exclude_type_checking_imports=False: type-only imports count as imports.
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=False, cache_dir=None)


def place(module: str) -> tuple[int, int] | None:
    """(layer, group) of ``module``; None for the exempt top-level package."""
    if module == PACKAGE:
        return None
    top = module.split(".")[1]
    for rank, (_, groups) in enumerate(LAYERS):
        for g, names in enumerate(groups):
            if top in names:
                return rank, g
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Every (importer, imported) pair inside the package, the exempt top level left out."""
    return [
        (m, d)
        for m in sorted(graph.modules)
        if m != PACKAGE
        for d in sorted(graph.find_modules_directly_imported_by(m))
        if d != PACKAGE
    ]


def where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return "; ".join(f"line {d['line_number']}: {d['line_contents']}" for d in details)


def cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing
    itself): each holds at least one import cycle (Tarjan's algorithm, iterative)."""
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in succ[node]:
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_cycle_and_nothing_else():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("f", "f")]
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["f"]]
    assert cycles([("a", "b"), ("b", "c"), ("a", "c")]) == []


def test_graph_sees_lazy_and_type_only_imports(graph):
    # A function-level import (Report.figure imports the figures module when asked) ...
    assert graph.direct_import_exists(importer="audiolens.study.report", imported="audiolens.study.figures")
    details = graph.get_import_details(importer="audiolens.study.report", imported="audiolens.study.figures")
    assert all(d["line_contents"].startswith("from . import figures") for d in details)
    # ... and one made only under TYPE_CHECKING.
    assert graph.direct_import_exists(importer="audiolens.study.runner", imported="audiolens.hooked")


def test_every_module_has_a_layer(graph):
    for module in graph.modules:
        place(module)


def test_no_import_cycles(graph):
    found = cycles(imports(graph))
    lines = []
    for component in found:
        inside = set(component)
        lines.append(" <-> ".join(component))
        lines += [f"    {a} -> {b} ({where(graph, a, b)})"
                  for a, b in imports(graph) if a in inside and b in inside]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_no_upward_or_sideways_imports(graph):
    bad = []
    for importer, imported in imports(graph):
        (ra, ga), (rb, gb) = place(importer), place(imported)
        if rb > ra or (rb == ra and gb != ga):
            bad.append(
                f"{importer} ({LAYERS[ra][0]}) imports {imported} ({LAYERS[rb][0]}): "
                f"{where(graph, importer, imported)}"
            )
    assert not bad, "imports against the layers:\n" + "\n".join(bad)
