"""The per-task answer schema and the OpenAI response_format field."""

import json
import math

import pytest

from prompts import (
    REASONING_KEY,
    STRUCTURED_OUTPUT_MODES,
    build_response_schema,
    response_format_for,
)

LABELS = ["billing", "technical support", "compte"]


def schema_errors(instance: object, schema: dict) -> list[str]:
    """Validate the subset of JSON Schema that build_response_schema uses."""
    if schema.get("type") == "string":
        return [] if isinstance(instance, str) else [f"{instance!r} is not a string"]
    if schema.get("type") == "number":
        is_number = isinstance(instance, int | float) and not isinstance(instance, bool)
        return [] if is_number and math.isfinite(instance) else [f"{instance!r} is not a number"]
    assert schema["type"] == "object"
    if not isinstance(instance, dict):
        return ["not an object"]
    errors = [f"missing {key!r}" for key in schema["required"] if key not in instance]
    for key, value in instance.items():
        if key in schema["properties"]:
            errors.extend(schema_errors(value, schema["properties"][key]))
        elif schema.get("additionalProperties") is False:
            errors.append(f"unexpected {key!r}")
    return errors


def test_schema_has_one_required_number_property_per_label_and_nothing_else():
    assert build_response_schema(LABELS) == {
        "type": "object",
        "properties": {
            "billing": {"type": "number"},
            "technical support": {"type": "number"},
            "compte": {"type": "number"},
        },
        "required": ["billing", "technical support", "compte"],
        "additionalProperties": False,
    }


def test_schema_property_order_follows_label_order():
    schema = build_response_schema(["b", "a", "c"])
    assert list(schema["properties"]) == ["b", "a", "c"]
    assert schema["required"] == ["b", "a", "c"]


def test_schema_accepts_a_valid_answer():
    schema = build_response_schema(LABELS)
    answer = json.loads('{"billing": 0.7, "technical support": 0.2, "compte": 0.1}')
    assert schema_errors(answer, schema) == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"billing": 0.7, "technical support": 0.3}, "missing 'compte'"),
        ({"billing": 0.7, "technical support": 0.2, "compte": 0.1, "other": 0}, "unexpected"),
        ({"billing": "0.7", "technical support": 0.2, "compte": 0.1}, "not a number"),
        ({"billing": True, "technical support": 0.2, "compte": 0.1}, "not a number"),
        ({"Billing": 0.7, "technical support": 0.2, "compte": 0.1}, "missing 'billing'"),
        ([0.7, 0.2, 0.1], "not an object"),
    ],
)
def test_schema_rejects_invalid_answers(answer, error):
    errors = schema_errors(answer, build_response_schema(LABELS))
    assert any(error in message for message in errors), errors


def test_schema_is_json_serializable_with_unicode_labels():
    schema = build_response_schema(["café", "日本語", "not spam"])
    assert json.loads(json.dumps(schema)) == schema


@pytest.mark.parametrize("labels", [[], ["a", "a"], "ab", [1, 2]])
def test_schema_rejects_invalid_label_lists(labels):
    with pytest.raises(ValueError):
        build_response_schema(labels)


def test_response_format_json_schema_is_strict_and_named():
    response_format = response_format_for("json_schema", LABELS)
    assert response_format == {
        "type": "json_schema",
        "json_schema": {
            "name": "label_distribution",
            "strict": True,
            "schema": build_response_schema(LABELS),
        },
    }


def test_response_format_json_object_and_none():
    assert response_format_for("json_object", LABELS) == {"type": "json_object"}
    assert response_format_for("none", LABELS) is None


@pytest.mark.parametrize("mode", ["JSON_SCHEMA", "text", "", "json"])
def test_response_format_rejects_unknown_modes(mode):
    with pytest.raises(ValueError, match="unknown structured output mode"):
        response_format_for(mode, LABELS)


def test_every_documented_mode_is_accepted():
    assert STRUCTURED_OUTPUT_MODES == ("json_schema", "json_object", "none")
    for mode in STRUCTURED_OUTPUT_MODES:
        response_format_for(mode, LABELS)


# --- reasoning flavour ------------------------------------------------------------------------


def test_reasoning_schema_puts_a_required_reasoning_string_first():
    schema = build_response_schema(["b", "a"], reasoning=True)
    assert schema == {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "b": {"type": "number"},
            "a": {"type": "number"},
        },
        "required": ["reasoning", "b", "a"],
        "additionalProperties": False,
    }
    assert next(iter(schema["properties"])) == REASONING_KEY == "reasoning"


def test_reasoning_schema_validates_the_reasoning_answer():
    schema = build_response_schema(LABELS, reasoning=True)
    answer = {"reasoning": "about money", "billing": 0.8, "technical support": 0.1, "compte": 0.1}
    assert schema_errors(answer, schema) == []
    without = {key: value for key, value in answer.items() if key != "reasoning"}
    assert schema_errors(without, schema) == ["missing 'reasoning'"]
    assert schema_errors({**answer, "reasoning": 0.5}, schema) == ["0.5 is not a string"]
    assert schema_errors(answer, build_response_schema(LABELS)) == ["unexpected 'reasoning'"]


def test_reasoning_schema_refuses_a_label_named_reasoning():
    with pytest.raises(ValueError, match="clashes with the reasoning property"):
        build_response_schema(["reasoning", "other"], reasoning=True)
    assert "reasoning" in build_response_schema(["reasoning", "other"])["required"]


def test_response_format_carries_the_reasoning_flavour_only_in_json_schema_mode():
    strict = response_format_for("json_schema", LABELS, reasoning=True)
    assert strict["json_schema"]["schema"] == build_response_schema(LABELS, reasoning=True)
    assert response_format_for("json_object", LABELS, reasoning=True) == {"type": "json_object"}
    assert response_format_for("none", LABELS, reasoning=True) is None
