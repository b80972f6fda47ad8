"""Structured logs: JSON or plain lines, the request id on each record, no secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from app.db import transaction
from app.main import create_app
from app.observability import (
    JsonFormatter,
    RequestIdFilter,
    configure_logging,
    request_id_var,
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
