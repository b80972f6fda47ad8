"""``verbcal serve``, ``worker`` and ``migrate``: the long-running processes and the schema."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.cli.common import database_url_for_humans, fail, require_migrated
from app.config import Settings
from app.db import create_db_engine
from app.migrate import current_revision, upgrade_to_head


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Do not run the embedded job worker in this process."),
    ] = False,
) -> None:
    """Run the API and dashboard (refuses an unmigrated database)."""
    import uvicorn

    from app.observability import configure_logging

    if no_worker:
        # The app is built by uvicorn (possibly in worker processes) from the environment.
        os.environ["VERBCAL_EMBEDDED_WORKER"] = "false"
    settings = Settings()
    require_migrated(settings).dispose()
    configure_logging(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # our root handler formats uvicorn's records too
        log_level=settings.log_level.lower(),
        access_log=False,  # the app writes its own access line (route template, request id)
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def worker() -> None:
    """Run a job worker until SIGTERM/SIGINT (use with PostgreSQL; any number of them)."""
    from app.jobs.worker import run_worker_process
    from app.observability import configure_logging

    settings = Settings()
    require_migrated(settings).dispose()
    configure_logging(settings)
    run_worker_process(settings)


def migrate() -> None:
    """Apply pending database migrations and print the current revision."""
    settings = Settings()
    where = database_url_for_humans(settings.database_url)
    try:
        upgrade_to_head(settings.database_url)
        engine = create_db_engine(settings.database_url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        fail(f"migrating {where} failed: {reason}")
    typer.echo(f"database {where} is at revision {revision} (head)")
