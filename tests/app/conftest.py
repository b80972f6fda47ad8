"""API test fixtures: every test that uses `client` runs on SQLite and on PostgreSQL.

The PostgreSQL server comes from VERBCAL_TEST_POSTGRES_URL (default: the local server). When it
cannot be reached, the PostgreSQL variants are skipped, unless VERBCAL_REQUIRE_POSTGRES=1 (set by
.ci/run), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import create_db_engine, create_session_factory, transaction
from app.main import create_app
from app.migrate import upgrade_to_head
from app.models import Base
from app.services import keys

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_server_url() -> str:
    return os.environ.get("VERBCAL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _postgres_unreachable(reason: str) -> None:
    if os.environ.get("VERBCAL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here but unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@contextlib.contextmanager
def new_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database ``prefix_<random>`` on the test server, dropped after."""
    server = make_url(postgres_server_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin_engine.dispose()
        _postgres_unreachable(str(exc).splitlines()[0])
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    with new_postgres_database("verbcal_test") as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'verbcal.db'}"
    upgrade_to_head(url)
    return url


def emptied_after(url: str) -> Iterator[str]:
    """Yield ``url``, then delete every row of every table (a fixture's body)."""
    yield url
    engine = create_db_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request) -> Iterator[str]:
    """A migrated database, emptied after each test."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    yield from emptied_after(request.getfixturevalue(fixture))


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(
        database_url=database_url,
        embedded_worker=False,
        secret_key="test-secret",
        min_fit_examples=20,
        log_json=False,
    )


@pytest.fixture
def app(settings):
    return create_app(settings, start_worker=False)


@pytest.fixture
def session_factory(app):
    return app.state.session_factory


def _make_key(app, role: str) -> str:
    with transaction(create_session_factory(app.state.engine)) as session:
        _, secret = keys.create_key(session, role, name=f"test-{role}")
    return secret


@pytest.fixture
def admin_key(app) -> str:
    return _make_key(app, "admin")


@pytest.fixture
def app_key(app) -> str:
    return _make_key(app, "app")


@pytest.fixture
def anon_client(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(app, admin_key) -> Iterator[TestClient]:
    """A client authenticated with an admin key."""
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield client


@pytest.fixture
def app_client(app, app_key) -> Iterator[TestClient]:
    """A client authenticated with an `app`-role key."""
    with TestClient(app, headers={"Authorization": f"Bearer {app_key}"}) as client:
        yield client
