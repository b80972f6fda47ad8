"""Request ids, structured logs without secrets, and Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import transaction
from app.main import create_app
from app.observability import (
    JsonFormatter,
    RequestIdFilter,
    configure_logging,
    request_id_var,
    sane_request_id,
)
from app.services import keys


@pytest.fixture
def json_app(settings):
    return create_app(settings.model_copy(update={"log_json": True}), start_worker=False)


@pytest.fixture
def log_stream(json_app) -> io.StringIO:
    """What verbcal's root handler writes, captured."""
    stream = io.StringIO()
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_verbcal", False)]
    handler.setStream(stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_incoming_request_id_is_echoed(anon_client):
    response = anon_client.get("/healthz", headers={"X-Request-ID": "abc.DEF-123_4"})
    assert response.headers["X-Request-ID"] == "abc.DEF-123_4"


@pytest.mark.parametrize("incoming", [None, "x" * 101, "has space", "semi;colon", ""])
def test_missing_or_insane_request_id_is_replaced(anon_client, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = anon_client.get("/healthz", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert generated and generated != incoming
    assert sane_request_id(generated) == generated


def test_request_ids_differ_between_requests(anon_client):
    first = anon_client.get("/healthz").headers["X-Request-ID"]
    assert anon_client.get("/healthz").headers["X-Request-ID"] != first


def test_error_answers_carry_the_request_id(anon_client):
    response = anon_client.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["X-Request-ID"]


def test_json_log_lines_parse_and_carry_the_request_id(json_app, log_stream):
    with TestClient(json_app) as client:
        client.get("/healthz?secret=1", headers={"X-Request-ID": "req-42"})
    lines = json_lines(log_stream)
    access = [line for line in lines if line["logger"] == "verbcal.access"]
    assert len(access) == 1
    (line,) = access
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"
    assert line["method"] == "GET" and line["route"] == "/healthz" and line["status"] == 200
    assert line["duration_ms"] >= 0
    assert {"ts", "message"} <= line.keys()
    assert "secret=1" not in json.dumps(line)


def test_no_key_or_authorization_header_in_logs(json_app, log_stream):
    with transaction(json_app.state.session_factory) as session:
        _, admin_key = keys.create_key(session, "admin", name="log-test")
    with TestClient(json_app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        client.get("/tasks")
        client.get("/tasks/missing-task")
        client.get("/metrics")
    logging.getLogger("some.module").info(
        "calling with Authorization: Bearer %s", admin_key, extra={"api_key": admin_key}
    )
    output = log_stream.getvalue()
    assert json_lines(log_stream)
    assert admin_key not in output
    assert admin_key[12:] not in output
    assert "[redacted]" in output


def test_texts_are_logged_only_at_debug():
    formatter = JsonFormatter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "asked", None, None)
    record.prompt = "classify: my card was charged twice"
    record.label = "billing"
    assert "charged twice" not in formatter.format(record)
    assert "billing" not in formatter.format(record)
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    assert "charged twice" in formatter.format(record)


def test_request_id_reaches_records_logged_inside_a_request():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("verbcal.test.inside")
    log.addHandler(handler)
    token = request_id_var.set("rid-7")
    try:
        log.warning("inside", extra={"task": "tickets"})
    finally:
        request_id_var.reset(token)
        log.removeHandler(handler)
    (line,) = json_lines(stream)
    assert line["request_id"] == "rid-7" and line["task"] == "tickets"


def test_plain_text_logs_when_json_is_off(settings):
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    try:
        token = request_id_var.set("rid-plain")
        logging.getLogger("verbcal.test.plain").warning("hello %s", "world", extra={"n": 3})
        request_id_var.reset(token)
    finally:
        configure_logging(settings)
    line = stream.getvalue().strip()
    assert "hello world" in line and "[rid-plain]" in line and "n=3" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_configure_logging_replaces_its_own_handler(settings):
    configure_logging(settings)
    configure_logging(settings)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_verbcal", False)]
    assert len(ours) == 1


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
