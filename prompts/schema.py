"""The per-task JSON schema of an answer and the OpenAI ``response_format`` request field.

An answer is one JSON object with one number property per label, every label required and no
other property allowed. Labels are used verbatim as property names: JSON Schema allows any string
there, spaces and unicode included. The schema has no ``minimum``/``maximum`` so that it stays
within what OpenAI's strict structured outputs accept everywhere; the parser checks range and sum.

Reasoning flavour (``reasoning=True``): the schema's *first* property is a required string
``"reasoning"``, then the label properties. Servers with structured output generate properties
in schema order, so the model writes its thinking before any probability (incremental
elicitation) even though its first token is already JSON. A task with a label spelled
``reasoning`` cannot use this flavour (``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prompts.labels import check_labels

__all__ = [
    "REASONING_KEY",
    "RESPONSE_SCHEMA_NAME",
    "STRUCTURED_OUTPUT_MODES",
    "build_response_schema",
    "response_format_for",
]

STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "none")
RESPONSE_SCHEMA_NAME = "label_distribution"
REASONING_KEY = "reasoning"
"""The property that holds the model's thinking in the reasoning flavour (placed first)."""


def build_response_schema(labels: Sequence[str], *, reasoning: bool = False) -> dict[str, Any]:
    """Return the JSON schema of an answer: one required number property per label, nothing else.

    With ``reasoning``, a required string property ``"reasoning"`` comes first.
    Raises ``ValueError`` when labels are empty, not strings, or not unique, or when
    ``reasoning`` is asked for and a label is spelled ``"reasoning"``.
    """
    label_list = check_labels(labels)
    properties: dict[str, Any] = {}
    if reasoning:
        if REASONING_KEY in label_list:
            raise ValueError(
                f"a label named {REASONING_KEY!r} clashes with the reasoning property; "
                "rename the label or turn reasoning off"
            )
        properties[REASONING_KEY] = {"type": "string"}
    properties.update({label: {"type": "number"} for label in label_list})
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def response_format_for(
    mode: str, labels: Sequence[str], *, reasoning: bool = False
) -> dict[str, Any] | None:
    """Return the OpenAI ``response_format`` field for a structured-output mode.

    ``json_schema`` → strict JSON schema named ``label_distribution`` (with the reasoning property
    first when ``reasoning``); ``json_object`` → plain JSON mode; ``none`` → ``None`` (send no
    ``response_format``). In the last two modes the prompt asks for the same object. Any other
    mode raises ``ValueError``.
    """
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": RESPONSE_SCHEMA_NAME,
                "strict": True,
                "schema": build_response_schema(labels, reasoning=reasoning),
            },
        }
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "none":
        return None
    raise ValueError(
        f"unknown structured output mode {mode!r}; expected one of {list(STRUCTURED_OUTPUT_MODES)}"
    )
