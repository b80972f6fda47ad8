"""The jobs API: starting elicitations, reading and cancelling jobs, errors and roles."""

from __future__ import annotations

from app.llm.synthetic import TICKET_LABELS

LLM = {"base_url": "http://llm.invalid/v1", "model": "m", "samples": 2}


def create_task(client, name="t", llm=LLM, texts=("refund please", "app crashes")):
    body = {"name": name, "labels": list(TICKET_LABELS), "llm": llm}
    assert client.post("/tasks", json=body).status_code == 201
    if texts:
        rows = [{"text": text, "label": "other"} for text in texts]
        assert client.post(f"/tasks/{name}/examples", json={"examples": rows}).status_code == 200


def test_start_read_and_cancel_a_job(client, app_client):
    create_task(client)
    started = client.post("/tasks/t/elicitations")
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "elicitation" and job["task"] == "t"
    assert (job["status"], job["total"], job["done"], job["failed"]) == ("queued", 2, 0, 0)
    assert job["errors"] == [] and job["cancel_requested"] is False
    assert job["started_at"] is None and job["finished_at"] is None

    read = app_client.get(f"/jobs/{job['id']}")
    assert read.status_code == 200
    assert read.json() == job

    cancelled = client.post(f"/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"] is True
    assert client.post("/tasks/t/elicitations").json()["status"] == "queued"


def test_a_second_job_for_the_same_task_conflicts(client):
    create_task(client)
    first = client.post("/tasks/t/elicitations").json()
    second = client.post("/tasks/t/elicitations")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "conflict"
    assert second.json()["error"]["details"] == {"job_id": first["id"], "status": "queued"}


def test_a_task_without_llm_config_cannot_elicit(client):
    create_task(client, llm=None)
    response = client.post("/tasks/t/elicitations")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_ready"
    assert response.json()["error"]["details"][0]["field"] == "llm"


def test_a_task_without_missing_answers_gets_a_finished_job(client):
    create_task(client, texts=())
    job = client.post("/tasks/t/elicitations").json()
    assert (job["status"], job["total"]) == ("succeeded", 0)
    assert job["finished_at"] is not None
    assert client.post(f"/jobs/{job['id']}/cancel").status_code == 409


def test_unknown_task_and_job_are_404(client):
    assert client.post("/tasks/nope/elicitations").status_code == 404
    missing = client.get("/jobs/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert client.post("/jobs/nope/cancel").status_code == 404


def test_starting_and_cancelling_need_an_admin_key(client, app_client, anon_client):
    create_task(client)
    assert app_client.post("/tasks/t/elicitations").status_code == 403
    job_id = client.post("/tasks/t/elicitations").json()["id"]
    assert app_client.post(f"/jobs/{job_id}/cancel").status_code == 403
    assert anon_client.get(f"/jobs/{job_id}").status_code == 401


def test_routes_declare_their_error_responses(client):
    paths = client.get("/openapi.json").json()["paths"]
    start = paths["/tasks/{name}/elicitations"]["post"]["responses"]
    assert {"202", "401", "403", "404", "409", "422"} <= set(start)
    assert {"200", "401", "404"} <= set(paths["/jobs/{job_id}"]["get"]["responses"])
    assert {"200", "403", "404", "409"} <= set(paths["/jobs/{job_id}/cancel"]["post"]["responses"])
