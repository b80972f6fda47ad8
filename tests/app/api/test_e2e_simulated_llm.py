"""End to end through HTTP with the simulated LLM (a real server on loopback, real openai client).

Create a task, upload examples (JSON and CSV), run an elicitation job to completion, fit, check
the temperature is close to the simulator's overconfidence T0 and that held-out ECE drops, call
/calibrate with text and with probabilities, give feedback, read monitoring, restart the app
on the same database and find the same active calibration. Runs on SQLite and PostgreSQL.
"""

import csv
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.jobs.worker import Worker
from app.llm.simulator import SimulatorSettings, running_simulator
from app.llm.synthetic import TICKET_LABELS, generate_examples
from app.main import create_app

T0 = 2.0
N_EXAMPLES = 400


@pytest.fixture(scope="module")
def simulator_url():
    with running_simulator(SimulatorSettings(t0=T0, rounding=0.05)) as base_url:
        yield base_url


def llm_config(base_url, **overrides):
    config = {
        "base_url": base_url,
        "model": "verbcal-simulated-llm",
        "structured_output": "json_schema",
        "temperature": 0.0,
        "max_retries": 1,
        "timeout_s": 10,
    }
    return {**config, **overrides}


def expected_calibrated(raw, temperature, eps):
    p = np.asarray(raw, dtype=np.float64)
    z = np.log((p / p.sum() + eps) / (1 + len(p) * eps))
    q = np.exp((z - z.max()) / temperature)
    return q / q.sum()


def test_full_flow(client, app_client, session_factory, settings, admin_key, simulator_url):
    labels = list(TICKET_LABELS)
    body = {"name": "tickets", "labels": labels, "llm": llm_config(simulator_url)}
    assert client.post("/tasks", json=body).status_code == 201

    examples = generate_examples(N_EXAMPLES, seed=3)
    half = N_EXAMPLES // 2
    as_json = [{"id": e.id, "text": e.text, "label": e.label} for e in examples[:half]]
    r = client.post("/tasks/tickets/examples", json={"examples": as_json})
    assert r.json()["inserted"] == half
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "label"])
    writer.writerows([e.id, e.text, e.label] for e in examples[half:])
    r = client.post(
        "/tasks/tickets/examples", files={"file": ("more.csv", buffer.getvalue(), "text/csv")}
    )
    assert r.json()["inserted"] == N_EXAMPLES - half

    started = client.post("/tasks/tickets/elicitations")
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert started.json()["status"] == "queued"
    assert started.json()["total"] == N_EXAMPLES
    Worker(session_factory, settings).run_until_idle()
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["done"], job["failed"]) == ("succeeded", N_EXAMPLES, 0)
    counts = client.get("/tasks/tickets").json()["counts"]
    assert counts["distributions"]["elicited"] == N_EXAMPLES

    # Re-running asks about nothing: every answer is stored.
    again = client.post("/tasks/tickets/elicitations").json()
    assert (again["status"], again["total"]) == ("succeeded", 0)

    fit = client.post("/tasks/tickets/fit", json={"validation": {"holdout": 0.3, "seed": 0}})
    assert fit.status_code == 201, fit.text
    fit = fit.json()
    assert fit["data"]["source"] == "elicited"
    assert fit["temperature"] == pytest.approx(T0, rel=0.2)
    assert fit["metrics"]["after"]["ece"] < fit["metrics"]["before"]["ece"]

    text = examples[0].text
    r = app_client.post("/calibrate", json={"task": "tickets", "text": text})
    assert r.status_code == 200, r.text
    result = r.json()
    assert "simulated" in result["llm"]["model"]
    assert result["llm"]["parse_status"] in ("ok", "repaired")
    assert result["calibration"]["id"] == fit["id"]
    raw = [result["raw_probabilities"][k] for k in labels]
    expected = expected_calibrated(raw, fit["temperature"], fit["eps"])
    assert [result["probabilities"][k] for k in labels] == pytest.approx(expected, rel=1e-9)
    # Calibration softens the overconfident answer.
    assert result["confidence"] <= max(raw) + 1e-12

    by_probabilities = app_client.post(
        "/calibrate", json={"task": "tickets", "probabilities": result["raw_probabilities"]}
    ).json()
    assert by_probabilities["probabilities"] == pytest.approx(result["probabilities"])
    assert by_probabilities["llm"] is None

    for request_id in (result["id"], by_probabilities["id"]):
        fb = app_client.post("/feedback", json={"id": request_id, "label": examples[0].label})
        assert fb.status_code == 200
    exposition = client.get("/metrics").text
    assert 'verbcal_llm_calls_total{outcome="ok"} 1.0' in exposition
    assert 'verbcal_calibrate_requests_total{outcome="ok",task="tickets"} 2.0' in exposition

    monitoring = app_client.get("/tasks/tickets/monitoring").json()
    assert monitoring["labelled"] == 2
    assert monitoring["drift"] is None  # too little feedback to judge

    with TestClient(
        create_app(settings, start_worker=False), headers={"Authorization": f"Bearer {admin_key}"}
    ) as restarted:
        active = restarted.get("/tasks/tickets").json()["active_calibration"]
        assert (active["id"], active["temperature"]) == (fit["id"], fit["temperature"])


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("500", 502, "llm_error"),
        ("malformed", 502, "llm_error"),
        ("timeout", 504, "llm_timeout"),
    ],
)
def test_llm_failures_map_to_502_and_504(client, app_client, simulator_url, fault, status, code):
    body = {
        "name": "t",
        "labels": list(TICKET_LABELS),
        "llm": llm_config(simulator_url, timeout_s=0.5, max_retries=1),
    }
    client.post("/tasks", json=body)
    r = app_client.post("/calibrate", json={"task": "t", "text": f"hello [sim-fault:{fault}]"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    if fault == "malformed":
        assert error["details"]["raw_excerpt"]
    assert client.get("/tasks/t/monitoring").json()["requests_total"] == 0


def test_batch_with_texts(client, app_client, simulator_url):
    body = {"name": "t", "labels": list(TICKET_LABELS), "llm": llm_config(simulator_url)}
    client.post("/tasks", json=body)
    items = [{"text": e.text} for e in generate_examples(5, seed=1)]
    items.append({"text": "broken [sim-fault:malformed]"})
    r = app_client.post("/calibrate/batch", json={"task": "t", "items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (5, 1)
    assert body["results"][5]["error"]["code"] == "llm_error"
