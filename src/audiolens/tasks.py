"""Attribute tasks: a label set plus the paper's Table I prompts (P1 direct, P2 QA, P3 MC).

A prompt has two parts: an optional user question (sent in the user turn after the audio) and the
assistant prefix ("The speaker's gender is"), rendered as the start of the assistant turn with no
end-of-turn token after it, so the next token the model predicts is the attribute itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ParameterError
from .labels import check_labels

PROMPT_FORMATS = ("P1", "P2", "P3")


def _text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise ParameterError(f"{what} must be text, got {type(value).__name__} {value!r:.60}")


@dataclass(frozen=True)
class Prompt:
    """One probing prompt.

    ``attribute_word`` is the word naming the attribute in ``prefix`` (e.g. "gender"); the batch
    records the position of its last token as the ``attribute`` position (the paper's
    penultimate token). ``labels`` is the task's label set, used to check and index row labels.

    Example:
        >>> p = Prompt(prefix="The speaker's gender is", attribute_word="gender")
        >>> p.question is None
        True
    """

    prefix: str
    attribute_word: str
    question: str | None = None
    name: str = "custom"
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _text(self.prefix, "Prompt.prefix")
        _text(self.attribute_word, "Prompt.attribute_word")
        _text(self.name, "Prompt.name")
        if self.question is not None:
            _text(self.question, "Prompt.question")
        if self.labels is not None:
            object.__setattr__(self, "labels", check_labels(self.labels))
        if not self.prefix.strip():
            raise ParameterError("Prompt.prefix must not be empty")
        if not self.attribute_word.strip():
            raise ParameterError("Prompt.attribute_word must not be empty")
        if self.attribute_word not in self.prefix:
            raise ParameterError(
                f"attribute_word {self.attribute_word!r} does not occur in prefix {self.prefix!r}"
            )


@dataclass(frozen=True)
class Task:
    """An auditory attribute: its label set and its three prompt formats.

    Example:
        >>> task = sakura_task("gender")
        >>> task.labels
        ('male', 'female')
        >>> task.prompt("P3").question
        'What is the gender of the speaker in the speech? Possible options: male, female.'
    """

    name: str
    labels: tuple[str, ...]
    question: str
    prefix: str
    attribute_word: str
    # Label spelling in the multiple-choice text (Table I lists the options in its own order).
    options: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for what in ("name", "question", "prefix", "attribute_word"):
            _text(getattr(self, what), f"Task.{what}")
        object.__setattr__(self, "labels", check_labels(self.labels))
        if len(self.labels) < 2:
            raise ParameterError(f"task {self.name!r} needs at least two labels, got {self.labels}")
        if len(set(self.labels)) != len(self.labels):
            raise ParameterError(f"task {self.name!r} has duplicate labels: {self.labels}")
        if not self.options:
            object.__setattr__(self, "options", self.labels)
        object.__setattr__(self, "options", check_labels(self.options))
        if set(self.options) != set(self.labels) or len(self.options) != len(self.labels):
            raise ParameterError(f"task {self.name!r}: options {self.options} != labels {self.labels}")

    def prompt(self, fmt: str = "P3") -> Prompt:
        """The Table I prompt of format ``"P1"``, ``"P2"`` or ``"P3"``."""
        if fmt == "P1":
            question = None
        elif fmt == "P2":
            question = self.question
        elif fmt == "P3":
            question = f"{self.question} Possible options: {', '.join(self.options)}."
        else:
            raise ParameterError(f"unknown prompt format {fmt!r}; choose one of {PROMPT_FORMATS}")
        return Prompt(self.prefix, self.attribute_word, question, name=fmt, labels=self.labels)

    def label_index(self, label: str) -> int:
        """Index of ``label`` in :attr:`labels`; a clear error for anything else."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise ParameterError(
                f"label {label!r} is not in task {self.name!r}; expected one of {list(self.labels)}"
            ) from None


SAKURA_TASKS: dict[str, Task] = {
    "gender": Task(
        name="gender",
        labels=("male", "female"),
        question="What is the gender of the speaker in the speech?",
        prefix="The speaker's gender is",
        attribute_word="gender",
    ),
    "language": Task(
        name="language",
        labels=("English", "German", "Spanish", "French", "Italian", "Chinese", "Japanese", "Korean"),
        question="What is the language spoken in the speech?",
        prefix="The speech's spoken language is",
        attribute_word="language",
    ),
    "emotion": Task(
        name="emotion",
        labels=("angry", "disgust", "fear", "happy", "sad"),
        question="What is the emotion of the speaker in the speech?",
        prefix="The speaker's emotion is",
        attribute_word="emotion",
    ),
    "animal": Task(
        name="animal",
        labels=("dog", "cat", "pig", "cow", "frog", "hen", "rooster", "sheep", "crow"),
        question="What animal makes the sound?",
        prefix="The sound file's animal is",
        attribute_word="animal",
    ),
}


def sakura_task(attribute: str) -> Task:
    """The SAKURA task for ``attribute`` (gender, language, emotion or animal), Table I prompts.

    Example:
        >>> sakura_task("emotion").prompt("P1").prefix
        "The speaker's emotion is"
    """
    try:
        return SAKURA_TASKS[attribute.lower()]
    except KeyError:
        raise ParameterError(
            f"unknown attribute {attribute!r}; choose one of {sorted(SAKURA_TASKS)}"
        ) from None
