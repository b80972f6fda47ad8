"""An unhandled error is logged without the request's texts at ERROR (they are at DEBUG only)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from app.main import create_app
from app.models import Task

SECRET_TEXT = "my card number is 4111 1111 1111 1111"


def test_the_error_line_names_the_exception_not_the_text(settings, caplog):
    app = create_app(settings, start_worker=False)

    @app.get("/boom")
    def boom() -> None:
        raise ValueError(f"cannot store {SECRET_TEXT!r}")

    caplog.set_level(logging.DEBUG, logger="app.api.errors")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert line.startswith("unhandled error: ValueError")
    assert "in boom" in line  # where it was raised
    assert SECRET_TEXT not in line and errors[0].exc_info is None
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(SECRET_TEXT in str(r.exc_info[1]) for r in debug if r.exc_info)
    app.state.engine.dispose()


def test_database_errors_do_not_quote_the_values_they_failed_to_store(session_factory):
    with session_factory.begin() as session:
        session.add(Task(name="dup", labels=["a", "b"]))
    with pytest.raises(IntegrityError) as raised, session_factory.begin() as session:
        session.add(Task(name="dup", labels=["a", "b"], description=SECRET_TEXT))
    assert SECRET_TEXT not in str(raised.value)
    assert "hidden due to hide_parameters" in str(raised.value)
