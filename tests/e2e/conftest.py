"""Fixtures of the end-to-end tests: a fresh PostgreSQL database per test."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.app.conftest import _postgres_unreachable, postgres_server_url


@pytest.fixture
def fresh_postgres_database():
    """The URL of a new, empty database on the test PostgreSQL server (dropped afterwards)."""
    server = make_url(postgres_server_url())
    name = f"verbcal_e2e_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _postgres_unreachable(str(exc).splitlines()[0])
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
