"""Bad input is a 4xx with the standard error body naming the field, row or example: never
a 500 (both backends: ids beyond 32 bits overflowed PostgreSQL's INTEGER columns)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.models import Elicitation, Example
from tests.app.factories import LABELS, overconfident_items

HUGE = {label: 1e308 for label in LABELS}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def task(client) -> str:
    client.post("/tasks", json={"name": "t", "labels": LABELS}).raise_for_status()
    return "t"


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_probabilities_whose_sum_overflows_are_refused_at_calibrate(client, task):
    error = _error(client.post("/calibrate", json={"task": task, "probabilities": HUGE}), 422)
    assert error["details"] == [
        {
            "field": "probabilities",
            "message": "the probabilities are too large: their sum overflows",
        }
    ]


def test_probabilities_whose_sum_overflows_are_refused_at_import(client, task):
    items = [{"text": "fine", "probabilities": {"a": 0.5, "b": 0.3, "c": 0.2}}]
    items.append({"text": "huge", "probabilities": HUGE})
    error = _error(client.post(f"/tasks/{task}/predictions", json={"items": items}), 422)
    assert [(d["row"], d["field"]) for d in error["details"]] == [(1, "probabilities")]
    assert client.get(f"/tasks/{task}/examples").json() == []  # all or nothing


def test_a_fit_names_the_example_of_a_bad_stored_distribution(client, task, session_factory):
    items = overconfident_items(30)
    examples = [
        {"id": f"ex-{i}", "text": item["text"], "label": item["label"]}
        for i, item in enumerate(items)
    ]
    client.post(f"/tasks/{task}/examples", json={"examples": examples}).raise_for_status()
    predictions = [
        {"example_id": f"ex-{i}", "probabilities": item["probabilities"]}
        for i, item in enumerate(items)
    ]
    client.post(f"/tasks/{task}/predictions", json={"items": predictions}).raise_for_status()
    # What an import stored before it checked for overflow.
    with session_factory.begin() as session:
        example_id = session.scalar(select(Example.id).where(Example.external_id == "ex-7"))
        session.execute(
            update(Elicitation)
            .where(Elicitation.example_id == example_id)
            .values(probabilities=[1e308, 1e308, 1e308])
        )
    error = _error(client.post(f"/tasks/{task}/fit", json={}), 409)
    assert error["code"] == "task_not_ready"
    assert error["details"] == [
        {"field": "examples", "message": "invalid stored distribution", "example": "ex-7"}
    ]
    assert "['ex-7']" in error["message"]
    assert "ind" not in error["message"]  # no array index


@pytest.mark.parametrize("path", ["/tasks/t/examples", "/tasks/t/predictions", "/calibrate"])
def test_json_nested_100000_deep_is_a_422(client, task, path):
    body = f'{{"examples": {DEEP}, "items": {DEEP}, "task": {DEEP}}}'
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert _error(response, 422)["code"] == "validation_error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tasks/t/calibrations/2147483648"),
        ("POST", "/tasks/t/calibrations/2147483648/activate"),
        ("GET", "/tasks/t/report?calibration_id=2147483648"),
        ("GET", "/tasks/t/examples?offset=2147483648"),
    ],
)
def test_ids_beyond_32_bits_are_a_422(client, task, method, path):
    error = _error(client.request(method, path), 422)
    assert "2147483647" in error["message"]


@pytest.mark.parametrize(
    ("llm", "field"),
    [
        ({"max_tokens": 2**70}, "llm.max_tokens"),
        ({"seed": 2**70}, "llm.seed"),
        ({"seed": -1}, "llm.seed"),
        ({"base_url": "http://[FA]/v1"}, "llm.base_url"),
        ({"base_url": "http://127.0.0.1:99999/v1"}, "llm.base_url"),
    ],
)
def test_llm_settings_out_of_range_are_a_422(client, llm, field):
    config = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **llm}
    body = {"name": "u", "labels": LABELS, "llm": config}
    error = _error(client.post("/tasks", json=body), 422)
    assert error["details"][0]["field"] == field


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_extra_body_are_a_422(client, constant):
    body = (
        '{"name": "u", "labels": ["a", "b"], "llm": {"base_url": "http://127.0.0.1:9/v1", '
        f'"model": "m", "extra_body": {{"top_p": [1, {{"x": {constant}}}]}}}}}}'
    )
    response = client.post("/tasks", content=body, headers={"content-type": "application/json"})
    assert _error(response, 422)["details"][0]["field"] == "llm.extra_body"
    assert client.get("/tasks/u").status_code == 404


def test_holdout_and_folds_together_are_a_422(client, task):
    body = {"validation": {"holdout": 0.3, "folds": 5}}
    error = _error(client.post(f"/tasks/{task}/fit", json=body), 422)
    assert "not both" in error["message"]


def test_a_405_names_every_method_of_the_path(client):
    response = client.delete("/tasks")
    assert _error(response, 405)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, POST"
    assert client.put("/calibrate").headers["Allow"] == "POST"
