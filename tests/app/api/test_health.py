"""Liveness, readiness and their absence from the OpenAPI schema."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.migrate import head_revision


def client_for(database_url: str) -> TestClient:
    settings = Settings(database_url=database_url, embedded_worker=False, log_json=False)
    return TestClient(create_app(settings, start_worker=False))


def test_healthz_needs_no_database():
    with client_for("postgresql+psycopg://nobody@127.0.0.1:1/none") as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_on_a_migrated_database(anon_client):
    response = anon_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "at_head",
        "revision": head_revision(),
    }


def test_readyz_needs_no_key(client):
    assert client.get("/readyz").status_code == 200


def test_readyz_on_an_unmigrated_sqlite_file(tmp_path):
    with client_for(f"sqlite:///{tmp_path / 'empty.db'}") as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "verbcal migrate" in error["message"]
    assert error["details"]["database"] == "ok"
    assert error["details"]["migrations"] == "not_migrated"
    assert error["details"]["revision"] is None
    assert error["details"]["head"] == head_revision()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-verbcal-dir/sub/verbcal.db",
        "postgresql+psycopg://verbcal:hunter2@127.0.0.1:1/verbcal",
    ],
)
def test_readyz_on_an_unreachable_database(url):
    with client_for(url) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "not_ready"
    assert body["error"]["details"]["database"] == "unreachable"
    assert "hunter2" not in response.text


def test_health_routes_are_not_in_the_openapi_schema(anon_client):
    paths = anon_client.get("/openapi.json").json()["paths"]
    assert not {"/healthz", "/readyz", "/metrics"} & paths.keys()
    assert paths  # the rest of the API is there
