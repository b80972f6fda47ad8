"""The per-task JSON schema of an answer and the OpenAI ``response_format`` request field.

An answer is one JSON object with one number property per label, every label required and no
other property allowed. Labels are used verbatim as property names: JSON Schema allows any string
there, spaces and unicode included. The schema has no ``minimum``/``maximum`` so that it stays
within what OpenAI's strict structured outputs accept everywhere; the parser checks range and sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "RESPONSE_SCHEMA_NAME",
    "STRUCTURED_OUTPUT_MODES",
    "build_response_schema",
    "response_format_for",
]

STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "none")
RESPONSE_SCHEMA_NAME = "label_distribution"


def build_response_schema(labels: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema of an answer: one required number property per label, nothing else.

    Raises ``ValueError`` when labels are empty, not strings, or not unique.
    """
    label_list = _checked_labels(labels)
    return {
        "type": "object",
        "properties": {label: {"type": "number"} for label in label_list},
        "required": label_list,
        "additionalProperties": False,
    }


def response_format_for(mode: str, labels: Sequence[str]) -> dict[str, Any] | None:
    """Return the OpenAI ``response_format`` field for a structured-output mode.

    ``json_schema`` → strict JSON schema named ``label_distribution``; ``json_object`` → plain JSON
    mode; ``none`` → ``None`` (send no ``response_format``). Any other mode raises ``ValueError``.
    """
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": RESPONSE_SCHEMA_NAME,
                "strict": True,
                "schema": build_response_schema(labels),
            },
        }
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "none":
        return None
    raise ValueError(
        f"unknown structured output mode {mode!r}; expected one of {list(STRUCTURED_OUTPUT_MODES)}"
    )


def _checked_labels(labels: Sequence[str]) -> list[str]:
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
