"""Prometheus metrics: requests by route template, LLM and calibrate counts, job gauges."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.config import Settings
from app.db import transaction
from app.main import create_app


def metric_value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_part = series.partition("{")
        label_items = sorted(label_part.rstrip("}").split(",")) if label_part else []
        if metric == name and ",".join(label_items) == wanted:
            return float(value)
    return None


def test_metrics_count_requests_by_route_template(client):
    client.get("/tasks/first-missing")
    client.get("/tasks/second-missing")
    client.get("/nowhere/at/all")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/tasks/{name}"
    assert (
        metric_value(text, "verbcal_http_requests_total", method="GET", route=route, status="404")
        == 2
    )
    assert (
        metric_value(
            text, "verbcal_http_requests_total", method="GET", route="unmatched", status="404"
        )
        == 1
    )
    assert (
        metric_value(text, "verbcal_http_request_duration_seconds_count", method="GET", route=route)
        == 2
    )
    assert "first-missing" not in text
    assert metric_value(text, "verbcal_jobs", status="queued") == 0
    assert metric_value(text, "verbcal_job_items", state="total") == 0
    assert metric_value(text, "verbcal_jobs_scrape_ok") == 1


def test_recorded_llm_and_calibrate_metrics_are_exposed(app, anon_client):
    metrics = app.state.metrics
    metrics.record_llm_call("ok", 0.2)
    metrics.record_llm_call("timeout", 30.0)
    metrics.record_calibrate("tickets", "ok")
    text = anon_client.get("/metrics").text
    assert metric_value(text, "verbcal_llm_calls_total", outcome="ok") == 1
    assert metric_value(text, "verbcal_llm_calls_total", outcome="timeout") == 1
    assert metric_value(text, "verbcal_llm_call_duration_seconds_count") == 2
    assert metric_value(text, "verbcal_calibrate_requests_total", task="tickets", outcome="ok") == 1


def test_each_app_has_its_own_registry(settings):
    first = create_app(settings, start_worker=False)
    second = create_app(settings, start_worker=False)
    first.state.metrics.record_calibrate("t", "ok")
    assert first.state.metrics.registry is not second.state.metrics.registry
    assert b"verbcal_calibrate_requests_total{" not in second.state.metrics.exposition()


def test_job_gauges_come_from_the_database(client, app):
    from app.models import Job, Task

    jobs = [("running", 10, 4), ("queued", 5, 0), ("succeeded", 7, 7)]
    with transaction(app.state.session_factory) as session:
        # One task per job: a task may have only one active job of a kind.
        for i, (status, total, done) in enumerate(jobs):
            task = Task(name=f"jobs-metric-{i}", labels=["a", "b"])
            session.add(task)
            session.flush()
            session.add(
                Job(kind="elicitation", task_id=task.id, status=status, total=total, done=done)
            )
    text = client.get("/metrics").text
    assert metric_value(text, "verbcal_jobs", status="running") == 1
    assert metric_value(text, "verbcal_jobs", status="succeeded") == 1
    assert metric_value(text, "verbcal_job_items", state="total") == 15
    assert metric_value(text, "verbcal_job_items", state="done") == 4


def test_metrics_token_is_required_when_set(settings):
    with_token = Settings(
        **settings.model_dump(exclude={"metrics_token"}), metrics_token="scrape-me"
    )
    app = create_app(with_token, start_worker=False)
    with TestClient(app) as client:
        denied = client.get("/metrics")
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "unauthenticated"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert allowed.status_code == 200
