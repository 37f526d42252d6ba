"""Which vocabulary token stands for each label.

The paper scores the first token of each label word. Tokenizing the bare word (as the authors'
code does) splits some labels into fragments that also start unrelated words ("f" for fear,
"she" for sheep); the default here is the word as it follows "is", with its leading space.
Label sets whose first tokens collide are refused: their scores could not be told apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

LabelTokens = Literal["leading_space", "bare"]


class LabelTokenError(ValueError):
    """Labels that cannot be scored by distinct first tokens."""


def label_token_ids(
    tokenizer, labels: Sequence[str], mode: LabelTokens = "leading_space"
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
        raise ValueError(f"label token mode must be 'leading_space' or 'bare', got {mode!r}")
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
