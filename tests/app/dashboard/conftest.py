"""Dashboard fixtures. Server-side page tests run on SQLite only: the pages add no SQL of their
own beyond the services, which the API tests already run on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import transaction
from app.models import Example
from app.services import predictions as prediction_service
from app.services import tasks as task_service
from tests.app.conftest import emptied_after
from tests.app.factories import LABELS, overconfident_items


@pytest.fixture
def database_url(sqlite_database) -> Iterator[str]:
    """Overrides the parametrized SQLite + PostgreSQL fixture of tests/app/conftest.py."""
    yield from emptied_after(sqlite_database)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def browser_client(app) -> Iterator[TestClient]:
    """A client without an Authorization header: the dashboard works with its cookie."""
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def log_in(client: TestClient, key: str) -> None:
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"api_key": key, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def admin_client(browser_client, admin_key) -> TestClient:
    log_in(browser_client, admin_key)
    return browser_client


@pytest.fixture
def task(app, settings) -> str:
    """A task with 400 imported, labelled, overconfident distributions."""
    with transaction(app.state.session_factory) as session:
        task = task_service.create_task(session, {"name": "t", "labels": LABELS})
        prediction_service.import_predictions(session, task, overconfident_items(400), settings)
    return "t"


TASK_PAGES = ["", "/fit", "/operating-points", "/versions", "/monitoring"]


def page_csrf(client, url: str = "/admin") -> str:
    return csrf_of(client.get(url).text)


def example_count(app) -> int:
    with transaction(app.state.session_factory) as session:
        return session.scalar(select(func.count()).select_from(Example))


def fit(client, **fields) -> str:
    token = page_csrf(client, "/admin/tasks/t/fit")
    form = {"objective": "nll", "eps_mode": "value", "eps": "0", "holdout": "0.3", "seed": "1"}
    form |= {"activate": "on", "source": "auto", "csrf_token": token} | fields
    form = {name: value for name, value in form.items() if value is not None}
    response = client.post("/admin/tasks/t/fit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]
