"""`verbcal migrate` and `verbcal serve`'s refusal of an unmigrated database."""

from __future__ import annotations

from app.cli import cli
from app.migrate import head_revision


def test_migrate_prints_the_head_revision(runner, database_env):
    result = runner.invoke(cli, ["migrate"], env=database_env)
    assert result.exit_code == 0, result.output
    assert head_revision() in result.output
    again = runner.invoke(cli, ["migrate"], env=database_env)
    assert again.exit_code == 0


def test_serve_refuses_an_unmigrated_database(runner, database_env):
    result = runner.invoke(cli, ["serve", "--port", "0"], env=database_env)
    assert result.exit_code == 1
    assert "verbcal migrate" in result.output
    assert "not migrated" in result.output
