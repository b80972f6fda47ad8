"""The one check of a task's label list, shared by the schema builder, the parser and the API."""

from __future__ import annotations

from collections.abc import Sequence


def check_labels(labels: Sequence[str]) -> list[str]:
    """The labels as a list, in order.

    Raises ``ValueError`` unless ``labels`` is a non-empty sequence (not a single string) of
    distinct strings.
    """
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
        raise ValueError("labels must be a sequence of strings, not a single string")
    label_list = list(labels)
    if not label_list:
        raise ValueError("labels must not be empty")
    seen: set[str] = set()
    for label in label_list:
        if not isinstance(label, str):
            raise ValueError(f"labels must be strings, got {type(label).__name__}")
        if label in seen:
            raise ValueError(f"duplicate label {label!r}")
        seen.add(label)
    return label_list
