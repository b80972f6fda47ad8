"""The OpenAPI schema of request bodies says what their validation accepts.

Each case is checked both ways, against the model's validation and against its JSON Schema
(validated by jsonschema_rs, the validator schemathesis uses), so that a schema-valid request
is accepted and a schema-invalid one refused.
"""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from pydantic import BaseModel, ValidationError

from app.llm.config import LLMConfig
from app.main import create_app
from app.schemas.calibrate import CalibrateBatchRequest, CalibrateRequest
from app.schemas.calibrations import FitRequest, ValidationSpec
from app.schemas.data import ExamplesIn, PredictionsIn
from app.schemas.tasks import TaskCreate
from prompts.templates import TemplateError, template_from_text

LLM = {"base_url": "http://127.0.0.1:8010/v1", "model": "m"}
TASK = {"name": "t", "labels": ["a", "b"]}


def _accepted(model: type[BaseModel], body: dict) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


def _schema_valid(model: type[BaseModel], body: dict) -> bool:
    return jsonschema_rs.validator_for(model.model_json_schema()).is_valid(body)


CASES = [
    (ValidationSpec, {}, True),
    (ValidationSpec, {"holdout": None}, False),
    (ValidationSpec, {"holdout": None, "folds": None}, False),
    (ValidationSpec, {"holdout": None, "folds": 5}, True),
    (ValidationSpec, {"holdout": 0.2, "folds": 5}, False),
    (ValidationSpec, {"folds": 5.0}, True),  # JSON Schema's integer admits 5.0
    (ValidationSpec, {"folds": 5.5}, False),
    (ValidationSpec, {"folds": "5"}, False),
    (ValidationSpec, {"folds": 21}, False),
    (FitRequest, {"activate": 0}, False),
    (FitRequest, {"refit": "true"}, False),
    (FitRequest, {"eps": 0}, True),
    (FitRequest, {"eps": 0.5}, True),
    (FitRequest, {"eps": 0.51}, False),
    (FitRequest, {"eps": "auto"}, True),
    (FitRequest, {"conformal": {"coverages": [0.9, 0.9]}}, False),
    (FitRequest, {"conformal": {"coverages": [0.8, 0.9]}}, True),
    (LLMConfig, {**LLM, "max_tokens": 100.0}, True),
    (LLMConfig, {**LLM, "max_tokens": "100"}, False),
    (LLMConfig, {**LLM, "seed": None}, True),
    (LLMConfig, {**LLM, "seed": -1}, False),
    (LLMConfig, {**LLM, "reasoning": 1}, False),
    (CalibrateRequest, {"task": "t", "text": "a ticket"}, True),
    (CalibrateRequest, {"task": "t", "text": ""}, False),
    (CalibrateRequest, {"task": "t", "text": " \n\t"}, False),
    (CalibrateRequest, {"task": "t", "text": "a\x00b"}, False),
    (TaskCreate, {**TASK, "labels": ["a", "a\x00"]}, False),
    (TaskCreate, {**TASK, "labels": ["a", "a"]}, False),
]


@pytest.mark.parametrize(("model", "body", "valid"), CASES)
def test_the_schema_and_the_validation_agree(model, body, valid):
    assert _accepted(model, body) is valid
    assert _schema_valid(model, body) is valid


@pytest.mark.parametrize(
    "template",
    [
        "",
        "{text}",
        "{labels}",
        "{labels}\n{text}",
        "Text: {text}\nLabels: {labels}.",
        "{labels}{text}",
    ],
)
def test_the_prompt_template_pattern_is_the_placeholder_rule(template):
    try:
        template_from_text(template)
        usable = True
    except TemplateError:
        usable = False
    assert _schema_valid(TaskCreate, {**TASK, "prompt_template": template}) is usable


@pytest.mark.parametrize(
    "model", [CalibrateRequest, CalibrateBatchRequest, ExamplesIn, PredictionsIn, TaskCreate]
)
def test_the_openapi_examples_are_valid_requests(model):
    examples = model.model_json_schema()["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)
        assert _schema_valid(model, example)


def _keywords(schema) -> set[str]:
    if isinstance(schema, dict):
        return set(schema) | {k for value in schema.values() for k in _keywords(value)}
    if isinstance(schema, list):
        return {k for value in schema for k in _keywords(value)}
    return set()


def test_the_openapi_document_has_no_pydantic_constraint_names():
    """pydantic writes `ge`/`le` instead of minimum/maximum when constraints follow a
    validator in an optional field: validators then skip bounds nobody declared."""
    document = create_app().openapi()
    leaked = _keywords(document["components"]["schemas"]) & {"ge", "gt", "le", "lt"}
    assert not leaked, json.dumps(document["components"]["schemas"])[:500]
