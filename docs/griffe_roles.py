"""Turn the docstrings' Sphinx roles (``:class:`Task```) into cross-reference links on the site.

The docstrings name other objects with Sphinx roles, which read well in ``help()`` but which
mkdocstrings would print as raw text. After the package is loaded, each role becomes an autorefs
link (``[`Task`][audiolens.tasks.Task]``): the role's target is resolved the way Python would
resolve the name where the docstring stands (the object's members, its module's imports, the
enclosing scopes). A target inside audiolens that does not resolve is still written as a link,
so that the strict build fails on it and names it; a target outside audiolens (``os.replace``)
is printed as code, since the site has no inventory of other projects.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import griffe

PACKAGE = "audiolens"
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj|const):`([^`]+)`")


def lookup(pkg: griffe.Module, path: str) -> griffe.Object | None:
    """The object at ``path`` inside the package (an import followed to its definition), or None."""
    if path == pkg.path:
        return pkg
    if not path.startswith(pkg.path + "."):
        return None
    try:
        obj = pkg[path[len(pkg.path) + 1:]]
        return obj.final_target if obj.is_alias else obj
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def rendered(obj: griffe.Object) -> bool:
    """Whether the API pages show ``obj`` (they skip private names and undocumented members)."""
    if any(part.startswith("_") for part in obj.path.split(".")):
        return False
    return obj.is_module or obj.is_class or obj.docstring is not None


def resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path ``target`` names in ``obj``'s docstring, or None if the scope lacks it."""
    if target.startswith(PACKAGE + ".") or target == PACKAGE:
        return target
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return None
    return f"{path}.{rest}" if rest else path


def link(pkg: griffe.Module, obj: griffe.Object, match: re.Match[str]) -> str:
    """The Markdown that replaces one role: an autorefs link, or code for a name with no page."""
    text = " ".join(match.group(1).split())  # a role may wrap onto the next line
    if text.endswith(">") and " <" in text:  # :meth:`shown text <target>`
        shown, _, target = text[:-1].rpartition(" <")
    else:
        short = text.startswith("~")
        target = text.lstrip("~.").removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if short else target
        if match.group(0).startswith((":meth:", ":func:")):
            shown += "()"
    target = target.lstrip("~.").removesuffix("()")
    path = resolve(obj, target)
    if path is None and importlib.util.find_spec(target.partition(".")[0]) is not None \
            and not target.startswith(PACKAGE):
        return f"`{shown}`"  # another project's object: the site has no page to link to
    if path is not None and not path.startswith(PACKAGE):
        return f"`{shown}`"
    found = lookup(pkg, path) if path is not None else None
    if found is not None:
        if not rendered(found):
            return f"`{shown}`"  # a constant or private helper: it has no entry to link to
        path = found.path
    # an unknown target is written as a link all the same: the strict build names it
    return f"[`{shown}`][{path or target}]"


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _objects(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        for obj in _objects(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = ROLE.sub(lambda m, o=obj: link(pkg, o, m),
                                               obj.docstring.value)
