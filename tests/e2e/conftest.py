"""Fixtures of the end-to-end tests: a fresh PostgreSQL database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.app.conftest import new_postgres_database


@pytest.fixture
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL server (dropped afterwards)."""
    with new_postgres_database("verbcal_e2e") as url:
        yield url
