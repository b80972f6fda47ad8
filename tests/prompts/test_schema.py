"""The per-task answer schema and the OpenAI response_format field."""

import json
import math

import pytest

from prompts import STRUCTURED_OUTPUT_MODES, build_response_schema, response_format_for

LABELS = ["billing", "technical support", "compte"]


def schema_errors(instance: object, schema: dict) -> list[str]:
    """Validate the subset of JSON Schema that build_response_schema uses."""
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
