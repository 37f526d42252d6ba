"""The SAKURA benchmark layout: ``data/{Track}/audio/*.wav`` plus ``data/{Track}/metadata.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..tasks import SAKURA_TASKS, sakura_task
from .dataset import AttributeDataset, Checks, DataError, csv_dataset, existing_folder

if TYPE_CHECKING:
    from typing_extensions import Unpack

SAKURA_COLUMNS = (
    "file",
    "attribute_label",
    "single_instruction",
    "single_answer",
    "multi_instruction",
    "multi_answer",
)
TRACKS = {name: name.capitalize() for name in SAKURA_TASKS}  # "gender" -> "Gender"


def find_track_dir(root: str | Path, attribute: str) -> Path:
    """The folder holding ``metadata.csv`` and ``audio/`` for ``attribute``.

    ``root`` may be the SAKURA checkout, its ``data/`` folder, or the track folder itself.

    Example:
        >>> find_track_dir("tests/fixtures/sakura", "gender").name  # doctest: +SKIP
        'Gender'
    """
    root = Path(root)
    track = TRACKS[sakura_task(attribute).name]
    existing_folder(root)
    candidates = [root / "data" / track, root / track]
    if (root / "metadata.csv").is_file():
        other = {t.casefold() for t in TRACKS.values()} - {track.casefold()}
        if root.name.casefold() in other:
            raise DataError(f"{root} is the {root.name} track, not {track}")
        candidates.insert(0, root)
    for c in candidates:
        if (c / "metadata.csv").is_file():
            return c
    tried = "\n  ".join(str(c / "metadata.csv") for c in candidates)
    raise DataError(f"no SAKURA {track} track under {root}; looked for:\n  {tried}")


def load_sakura(root: str | Path, attribute: str, **checks: Unpack[Checks]) -> AttributeDataset:
    """Load one SAKURA track as an :class:`AttributeDataset` (sample id = file name).

    Label spelling is normalised onto the task's labels (" Female" -> "female",
    "english" -> "English"). Every clip's header is read now: missing files, unknown labels and
    clips that do not decode raise a :class:`DataError` listing all of them; ``on_error="skip"``
    (or ``on_missing``, ``on_unknown``, ``on_unreadable`` for one kind) drops them with a
    :class:`DataWarning` instead. Paths that leave ``audio/`` are refused.

    Example:
        >>> ds = load_sakura("tests/fixtures/sakura", "gender")  # doctest: +SKIP
        >>> ds.counts()  # doctest: +SKIP
        {'male': 2, 'female': 2}
    """
    task = sakura_task(attribute)
    track_dir = find_track_dir(root, attribute)
    meta_path = track_dir / "metadata.csv"
    return csv_dataset(meta_path, track_dir / "audio", "file", "attribute_label", task,
                       f"SAKURA {TRACKS[task.name]} ({meta_path})", **checks)

