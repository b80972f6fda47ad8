"""Reasoning-first elicitation, answer agreement and the LLM server check, through HTTP.

The LLM is the simulator running as a real server on loopback (real openai client); every test
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.db import transaction
from app.jobs.worker import Worker
from app.llm.simulator import JSON_SCHEMA_REJECTION, SimulatorSettings, running_simulator
from app.llm.synthetic import TICKET_LABELS, generate_examples
from app.models import Elicitation

LABELS = list(TICKET_LABELS)
SECRET = "sk-test-never-shown-0123456789"


@pytest.fixture(scope="module")
def simulator_url():
    with running_simulator(SimulatorSettings(t0=2.0)) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def corpus_style_url():
    """A simulator answering like the real corpus: Reasoning and Answer keys, no schema."""
    with running_simulator(SimulatorSettings(style="reasoning_answer")) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def no_json_schema_url():
    """A server that answers HTTP 500 to json_schema, like llama-cpp-python's."""
    with running_simulator(SimulatorSettings(reject_json_schema=True)) as base_url:
        yield base_url


def llm(base_url: str, **overrides) -> dict:
    return {
        "base_url": base_url,
        "model": "verbcal-simulated-llm",
        "temperature": 0.0,
        "max_retries": 2,
        "timeout_s": 10,
        **overrides,
    }


def create(client, base_url: str, name: str = "t", examples: int = 0, **overrides) -> None:
    body = {"name": name, "labels": LABELS, "llm": llm(base_url, **overrides)}
    created = client.post("/tasks", json=body)
    assert created.status_code == 201, created.text
    if examples:
        rows = [{"text": e.text, "label": e.label} for e in generate_examples(examples, seed=5)]
        assert client.post(f"/tasks/{name}/examples", json={"examples": rows}).status_code == 200


def test_calibrate_returns_the_reasoning_cut_to_the_configured_length(
    client, app_client, app, simulator_url
):
    create(client, simulator_url, reasoning=True)
    text = generate_examples(1, seed=2)[0].text
    full = app_client.post("/calibrate", json={"task": "t", "text": text})
    assert full.status_code == 200, full.text
    info = full.json()["llm"]
    assert info["reasoning"].startswith("The text reads most like ")
    assert info["answer_agrees"] is None
    assert info["parse_status"] == "ok" and info["repairs"] == []

    app.state.settings.reasoning_max_chars = 12
    cut = app_client.post("/calibrate", json={"task": "t", "text": text}).json()["llm"]
    assert cut["reasoning"] == info["reasoning"][:12]


def test_reasoning_changes_the_prompt_version_so_answers_are_kept_apart(client, simulator_url):
    create(client, simulator_url)
    plain = client.get("/tasks/t").json()["prompt_version"]
    changed = client.patch("/tasks/t", json={"llm": llm(simulator_url, reasoning=True)})
    assert changed.status_code == 200, changed.text
    with_reasoning = changed.json()["prompt_version"]
    assert with_reasoning != plain
    custom = "=== user ===\nLabels: {labels}\nText: {text}"
    own = client.patch(
        "/tasks/t", json={"prompt_template": custom, "llm": llm(simulator_url, reasoning=True)}
    ).json()
    own_plain = client.patch(
        "/tasks/t", json={"prompt_template": custom, "llm": llm(simulator_url)}
    ).json()
    assert own["prompt_version"] != own_plain["prompt_version"]


def test_a_label_named_reasoning_cannot_use_reasoning_mode(client, simulator_url):
    body = {
        "name": "r",
        "labels": ["reasoning", "other"],
        "llm": llm(simulator_url, reasoning=True),
    }
    refused = client.post("/tasks", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "llm.reasoning"
    assert client.get("/tasks/r").status_code == 404
    body["llm"]["reasoning"] = False
    assert client.post("/tasks", json=body).status_code == 201
    again = client.patch("/tasks/r", json={"llm": llm(simulator_url, reasoning=True)})
    assert again.status_code == 422


@pytest.mark.parametrize(("fault", "agrees"), [(None, True), ("answer_disagrees", False)])
def test_calibrate_reports_whether_the_stated_answer_agrees(
    client, app_client, corpus_style_url, fault, agrees
):
    create(client, corpus_style_url, structured_output="none")
    text = generate_examples(1, seed=3)[0].text + (f" [sim-fault:{fault}]" if fault else "")
    result = app_client.post("/calibrate", json={"task": "t", "text": text})
    assert result.status_code == 200, result.text
    info = result.json()["llm"]
    assert info["answer_agrees"] is agrees
    assert info["parse_status"] == "repaired"
    assert any(repair.startswith("ignored keys") for repair in info["repairs"])
    assert info["reasoning"].startswith("The text reads most like")


def test_stored_answers_keep_reasoning_and_agreement(
    client, session_factory, settings, corpus_style_url
):
    create(client, corpus_style_url, examples=6, structured_output="none", samples=2)
    assert client.post("/tasks/t/elicitations").status_code == 202
    assert Worker(session_factory, settings).run_until_idle() == 1
    with transaction(session_factory) as session:
        rows = session.execute(
            select(Elicitation.reasoning, Elicitation.answer_agrees, Elicitation.raw_text)
        ).all()
    assert len(rows) == 12
    for reasoning, agrees, raw in rows:
        assert reasoning and f'"Reasoning": "{reasoning}"' in raw
        assert agrees is True


def test_calibrate_answers_502_unsupported_structured_output(
    client, app_client, no_json_schema_url
):
    create(client, no_json_schema_url)
    result = app_client.post("/calibrate", json={"task": "t", "text": "hello"})
    assert result.status_code == 502
    error = result.json()["error"]
    assert error["code"] == "unsupported_structured_output"
    assert "json_schema" in error["message"] and "verbcal llm check" in error["message"]
    assert error["details"]["status_code"] == 500
    assert json.loads(error["details"]["raw_excerpt"])["message"] == JSON_SCHEMA_REJECTION


def test_a_job_stops_at_once_on_an_unsupported_structured_output(
    client, session_factory, settings, no_json_schema_url
):
    create(client, no_json_schema_url, examples=40, concurrency=2)
    settings.job_batch_size = 10
    job_id = client.post("/tasks/t/elicitations").json()["id"]
    Worker(session_factory, settings).run_until_idle()
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["done"] < 10 and job["total"] == 40
    stop = job["errors"][-1]
    assert stop["kind"] == "job"
    assert "unsupported_structured_output" in stop["message"]
    assert "structured_output='json_schema'" in stop["message"]
    assert "verbcal llm check" in stop["message"]
    with transaction(session_factory) as session:
        asked = session.scalars(select(Elicitation.status)).all()
    assert 1 <= len(asked) <= 2 and set(asked) == {"failed"}


def test_llm_check_recommends_the_configured_mode_when_it_works(client, simulator_url, monkeypatch):
    monkeypatch.setenv("VERBCAL_LLM_KEY_SIM", SECRET)
    create(client, simulator_url, examples=1, api_key_env="VERBCAL_LLM_KEY_SIM", temperature=0.7)
    response = client.post("/tasks/t/llm/check")
    assert response.status_code == 200, response.text
    report = response.json()
    assert SECRET not in response.text
    assert [probe["name"] for probe in report["modes"]] == ["json_schema", "json_object", "none"]
    for probe in report["modes"]:
        assert probe["accepted"] and probe["usable"] and probe["parse_status"] == "ok"
        assert probe["latency_ms"] > 0 and probe["answer_excerpt"].startswith("{")
    assert report["seed"]["accepted"] is True
    assert report["seed"]["detail"] == "seed 0 asked twice: the same answer"
    assert report["n"]["accepted"] is False and report["n"]["status_code"] == 400
    assert "n > 1" in report["n"]["error"]
    assert report["recommended_mode"] == "json_schema" and report["usable"] is True
    assert report["recommendation"].startswith("keep structured_output='json_schema'")


def test_llm_check_recommends_json_object_when_json_schema_is_rejected(client, no_json_schema_url):
    create(client, no_json_schema_url, reasoning=True)
    report = client.post("/tasks/t/llm/check").json()
    by_mode = {probe["name"]: probe for probe in report["modes"]}
    rejected = by_mode["json_schema"]
    assert rejected["accepted"] is False and rejected["status_code"] == 500
    assert rejected["error"].startswith("unsupported_structured_output: ")
    assert by_mode["json_object"]["usable"] and by_mode["json_object"]["reasoning"]
    assert report["reasoning"] is True
    assert report["recommended_mode"] == "json_object"
    assert report["recommendation"].startswith("set structured_output='json_object'")


def test_llm_check_errors(client, app_client, simulator_url):
    assert client.post("/tasks/nope/llm/check").status_code == 404
    client.post("/tasks", json={"name": "bare", "labels": LABELS})
    missing = client.post("/tasks/bare/llm/check")
    assert missing.status_code == 409
    assert missing.json()["error"]["code"] == "task_not_ready"
    assert missing.json()["error"]["details"][0]["field"] == "llm"
    create(client, simulator_url)
    assert app_client.post("/tasks/t/llm/check").status_code == 403
