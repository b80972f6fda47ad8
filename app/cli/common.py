"""What every ``verbcal`` command shares: exit codes, failing with a message, the migrated check.

Exit codes: 0 success, 1 a failed precondition (database not migrated or unreachable, unknown
key), 2 bad input (usage errors, bad data files, invalid options).
"""

from __future__ import annotations

from typing import NoReturn

import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db import create_db_engine
from app.migrate import current_revision, head_revision

EXIT_PRECONDITION = 1
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_PRECONDITION) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def database_url_for_humans(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def require_migrated(settings: Settings) -> Engine:
    """An engine on a database at the migrations' head; exits 1 with advice otherwise."""
    engine = create_db_engine(settings.database_url)
    where = database_url_for_humans(settings.database_url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        fail(f"cannot reach the database {where}: {reason}")
    head = head_revision()
    if revision != head:
        engine.dispose()
        state = "is not migrated" if revision is None else f"is at revision {revision}"
        fail(
            f"the database {where} {state}; the code needs revision {head}. "
            "Run `verbcal migrate` first (it is never done implicitly)."
        )
    return engine
