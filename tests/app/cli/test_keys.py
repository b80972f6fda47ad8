"""`verbcal keys create|list|revoke`."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.cli import cli
from app.db import create_db_engine, create_session_factory, transaction
from app.models import ApiKey
from app.services.keys import authenticate, hash_key


def test_keys_create_prints_a_key_that_authenticates(runner, migrated_env):
    result = runner.invoke(
        cli, ["keys", "create", "--role", "app", "--name", "ci"], env=migrated_env
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert re.fullmatch(r"vc_[A-Za-z0-9_-]+", secret)
    assert "not be shown again" in result.stderr
    engine = create_db_engine(migrated_env["VERBCAL_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            row = authenticate(session, secret)
            assert row is not None and row.role == "app" and row.name == "ci"
            stored = session.scalars(select(ApiKey)).all()
            assert [key.key_hash for key in stored] == [hash_key(secret)]
            assert secret not in {key.key_hash for key in stored}
            hashed = stored[0].key_hash
    finally:
        engine.dispose()

    listing = runner.invoke(cli, ["keys", "list"], env=migrated_env)
    assert listing.exit_code == 0, listing.output
    assert secret[:11] in listing.output and "ci" in listing.output
    assert secret not in listing.output
    assert hashed not in listing.output

    revoked = runner.invoke(cli, ["keys", "revoke", secret[:11]], env=migrated_env)
    assert revoked.exit_code == 0, revoked.output
    engine = create_db_engine(migrated_env["VERBCAL_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            assert authenticate(session, secret) is None
    finally:
        engine.dispose()
    assert runner.invoke(cli, ["keys", "revoke", secret[:11]], env=migrated_env).exit_code == 1


def test_keys_create_rejects_an_unknown_role(runner, migrated_env):
    result = runner.invoke(cli, ["keys", "create", "--role", "root"], env=migrated_env)
    assert result.exit_code == 2
    assert "admin, app" in result.output


def test_keys_need_a_migrated_database(runner, database_env):
    result = runner.invoke(cli, ["keys", "list"], env=database_env)
    assert result.exit_code == 1
    assert "verbcal migrate" in result.output
