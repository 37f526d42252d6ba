"""Any folder of clips with a CSV of labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..tasks import Task
from .dataset import AttributeDataset, Checks, DataError, csv_dataset, existing_folder

if TYPE_CHECKING:
    from typing_extensions import Unpack


def load_folder(
    folder: str | Path,
    labels_csv: str | Path,
    task: Task,
    file_column: str = "file",
    label_column: str = "label",
    *,
    name: str | None = None,
    **checks: Unpack[Checks],
) -> AttributeDataset:
    """Clips under ``folder`` labelled by ``labels_csv`` (file paths relative to ``folder``).

    ``labels_csv`` is taken relative to ``folder`` unless it exists as given. The sample id is
    the file column's value. Labels are normalised, clips checked and problems reported as in
    :func:`audiolens.data.load_sakura`; paths that leave ``folder`` are refused.

    Example:
        >>> from audiolens.tasks import sakura_task
        >>> ds = load_folder("clips", "labels.csv", sakura_task("gender"))  # doctest: +SKIP
    """
    folder = Path(folder)
    existing_folder(folder)
    csv_path = Path(labels_csv)
    if not csv_path.is_file() and (folder / csv_path).is_file():
        csv_path = folder / csv_path
    if not csv_path.is_file():
        raise DataError(f"labels file {labels_csv} not found (also looked in {folder})")
    return csv_dataset(csv_path, folder, file_column, label_column, task, name or f"{folder} ({csv_path.name})",
                       **checks)
