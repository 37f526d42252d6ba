"""Which vocabulary token stands for each label.

The paper scores the first token of each label word. Tokenizing the bare word (as the authors'
code does) splits some labels into fragments that also start unrelated words ("f" for fear,
"she" for sheep); the default here is the word as it follows "is", with its leading space.
Label sets whose first tokens collide are refused: their scores could not be told apart. So are
empty labels and labels padded with spaces, which would be scored by a bare-space token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from .errors import LabelTokenError as LabelTokenError
from .errors import ParameterError

LabelTokens = Literal["leading_space", "bare"]


def check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """``labels`` as a tuple of words, or :class:`LabelTokenError` for one that is not a word.

    An empty or blank label would be scored by a bare space token, and a label with leading or
    trailing spaces by a token other than the word's own.

    Example:
        >>> check_labels(["male", "female"])
        ('male', 'female')
        >>> check_labels(["male", " "])
        Traceback (most recent call last):
        ...
        audiolens.errors.LabelTokenError: label ' ' is empty or blank; a label must be a word
    """
    if isinstance(labels, str):
        raise LabelTokenError(f"labels must be a sequence of words, got the string {labels!r}")
    try:
        labels = tuple(labels)
    except TypeError:
        raise LabelTokenError(f"labels must be a sequence of words, got {labels!r:.80}") from None
    for label in labels:
        if not isinstance(label, str):
            raise LabelTokenError(f"label {label!r} is not text (got {type(label).__name__})")
        if not label.strip():
            raise LabelTokenError(f"label {label!r} is empty or blank; a label must be a word")
        if label != label.strip():
            raise LabelTokenError(
                f"label {label!r} has leading or trailing whitespace; give the bare word "
                "(label_tokens='leading_space' adds the space it takes after 'is')"
            )
    return labels


def label_token_ids(
    tokenizer: Any, labels: Sequence[str], mode: LabelTokens = "leading_space"
) -> list[int]:
    """First-token id of each label, as the word would follow "is" (or bare, the paper's way).

    Example:
        >>> from audiolens.models.tiny import build_tokenizer
        >>> tok = build_tokenizer()
        >>> ids = label_token_ids(tok, ["male", "female"])
        >>> tok.convert_ids_to_tokens(ids)
        ['Ġmale', 'Ġfemale']
    """
    if mode not in ("leading_space", "bare"):
        raise ParameterError(f"label token mode must be 'leading_space' or 'bare', got {mode!r}")
    labels = check_labels(labels)
    ids = []
    for label in labels:
        text = f" {label}" if mode == "leading_space" else label
        pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise LabelTokenError(f"label {label!r} tokenizes to nothing")
        ids.append(pieces[0])
    by_id: dict[int, list[str]] = {}
    for label, i in zip(labels, ids):
        by_id.setdefault(i, []).append(label)
    clashes = {i: names for i, names in by_id.items() if len(names) > 1}
    if clashes:
        detail = "; ".join(
            f"{names} all start with token {tokenizer.convert_ids_to_tokens(i)!r}"
            for i, names in clashes.items()
        )
        other = "bare" if mode == "leading_space" else "leading_space"
        raise LabelTokenError(
            f"labels collide on their first token ({mode}): {detail}. Rename the labels or "
            f"try label_tokens={other!r}"
        )
    return ids
