"""Data: labelled clips for a task, from SAKURA, a folder, a Hugging Face data set or espeak-ng.

- :mod:`~audiolens.data.dataset`: :class:`Sample`, :class:`AttributeDataset` and the checks every
  loader runs (:func:`build_dataset`);
- :mod:`~audiolens.data.sakura`, :mod:`~audiolens.data.folder`, :mod:`~audiolens.data.hf`: the
  loaders;
- :mod:`~audiolens.data.synth`: speech synthesized with espeak-ng (voices, languages, cache).

Data sets sit just above the core: they read clips and tasks and know nothing of models.

Example:
    >>> from audiolens.data import load_sakura
    >>> ds = load_sakura("path/to/SAKURA", "gender")  # doctest: +SKIP
    >>> probe, test = ds.split(100, seed=0)  # doctest: +SKIP
"""

from audiolens.data.dataset import (
    AttributeDataset,
    Checks,
    DataError,
    DataWarning,
    Entry,
    Sample,
    build_dataset,
    existing_folder,
    leaves_folder,
    normalize_label,
)
from audiolens.data.folder import load_folder
from audiolens.data.hf import from_hf_dataset
from audiolens.data.sakura import find_track_dir, load_sakura
from audiolens.data.synth import (
    SynthError,
    Utterance,
    generate,
    speak,
    synthesize,
    synthetic_dataset,
)

__all__ = [
    "AttributeDataset",
    "Checks",
    "DataError",
    "DataWarning",
    "Entry",
    "Sample",
    "SynthError",
    "Utterance",
    "build_dataset",
    "existing_folder",
    "find_track_dir",
    "from_hf_dataset",
    "generate",
    "leaves_folder",
    "load_folder",
    "load_sakura",
    "normalize_label",
    "speak",
    "synthesize",
    "synthetic_dataset",
]
