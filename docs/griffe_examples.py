"""Read this project's ``Example:`` docstring sections as Google-style ``Examples:`` sections.

The docstrings head their doctests ``Example:`` (singular), which Google style reads as an
admonition of plain Markdown; as ``Examples:`` the ``>>>`` lines render as code and their
brackets are not taken for Markdown reference links.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
