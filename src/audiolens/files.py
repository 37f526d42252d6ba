"""Files that appear whole or not at all: every writer in the package goes through here.

A reader (or a crash) sees either the old file or the new one, never half of it; temporary
names are unique, so two writers of one path never share a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; when the block ends without an error it
    reaches the disk and replaces ``path`` in one :func:`os.replace`, else it is removed.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
        >>> with replacing(path) as tmp:
        ...     _ = tmp.write_text("a,b\\n")
        >>> path.read_text()
        'a,b\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes the file private; keep the mode of the file replaced, or a usual one.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Replace ``path``'s content with ``data`` all at once: a reader (or a crash) sees either
    the old file or the new one, never half of it (see :func:`replacing`).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "meta.json"
        >>> write_atomic(path, '{"format": 1}\\n').read_text()
        '{"format": 1}\\n'
    """
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else bytes(data))
    return Path(path)


def write_parquet(df: Any, path: str | Path) -> Path:
    """Write ``df`` to ``path`` as Parquet (needs ``pyarrow``: ``pip install audiolens[data]``).

    The file appears whole or not at all: it is written next to ``path`` and then renamed.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(
            "writing Parquet needs pyarrow: pip install 'audiolens[data]' (or pyarrow)"
        ) from None
    with replacing(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


__all__ = ["replacing", "write_atomic", "write_parquet"]
