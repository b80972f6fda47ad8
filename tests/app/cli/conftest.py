"""Fixtures of the `verbcal` command tests: typer's CliRunner and a (migrated) SQLite database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def database_env(tmp_path) -> dict[str, str]:
    return {"VERBCAL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "VERBCAL_LOG_JSON": "0"}


@pytest.fixture
def migrated_env(runner, database_env) -> dict[str, str]:
    result = runner.invoke(cli, ["migrate"], env=database_env)
    assert result.exit_code == 0, result.output
    return database_env
