"""``verbcal keys create|list|revoke``: API keys (a secret is printed once, never stored)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from app.cli.common import EXIT_BAD_INPUT, fail, require_migrated
from app.config import Settings
from app.db import create_session_factory, transaction
from app.models import ApiKey, utcnow

keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_cli.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin (everything) or app (calibrate, feedback).")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "",
) -> None:
    """Create an API key and print it once."""
    from app.services.keys import ROLES, create_key

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}; got {role!r}", EXIT_BAD_INPUT)
    engine = require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            row, secret = create_key(session, role, name)  # type: ignore[arg-type]
            prefix, row_name = row.prefix, row.name
    finally:
        engine.dispose()
    typer.echo(secret)
    typer.secho(
        f"created {role} key {prefix!r} ({row_name}). Store it now: it will not be shown again.",
        fg=typer.colors.YELLOW,
        err=True,
    )


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


@keys_cli.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys: prefix, name, role, created, last used (never the key or its hash)."""
    engine = require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
            if not all_keys:
                query = query.where(ApiKey.revoked_at.is_(None))
            rows = [
                (
                    key.prefix,
                    key.name,
                    key.role,
                    _when(key.created_at),
                    _when(key.last_used_at),
                    "revoked" if key.revoked_at else "active",
                )
                for key in session.scalars(query)
            ]
    finally:
        engine.dispose()
    if not rows:
        typer.echo("no keys; create one with `verbcal keys create --role admin`")
        return
    header = ("PREFIX", "NAME", "ROLE", "CREATED", "LAST USED", "STATUS")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


@keys_cli.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix (keys list).")]):
    """Revoke a key: new logins and lookups refuse it at once; a running API process that saw
    it in the last VERBCAL_AUTH_CACHE_TTL_S seconds (default 10) accepts it until then."""
    engine = require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            matches = list(
                session.scalars(
                    select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
                )
            )
            if len(matches) == 1:
                matches[0].revoked_at = utcnow()
    finally:
        engine.dispose()
    if not matches:
        fail(f"no active key with prefix {prefix!r}")
    if len(matches) > 1:
        fail(f"{len(matches)} active keys share the prefix {prefix!r}; nothing revoked")
    typer.echo(f"revoked key {prefix!r}")
