"""Liveness, readiness and Prometheus metrics (kept out of the OpenAPI schema).

``GET /metrics`` needs no API key: scrape it on an internal network. When
``VERBCAL_METRICS_TOKEN`` is set it requires ``Authorization: Bearer <that token>``.
"""

from __future__ import annotations

import hmac
import logging
from functools import lru_cache

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, inspect, text

from app.api.errors import error_body
from app.migrate import head_revision
from app.observability import CONTENT_TYPE_LATEST, get_metrics

router = APIRouter(include_in_schema=False)
logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _head_revision() -> str | None:
    # The migration scripts ship with the code, so the head cannot change while we run.
    return head_revision()


def database_revision(engine: Engine) -> str | None:
    """The stored Alembic revision, None for an unmigrated database. Raises if unreachable."""
    # Read directly rather than through Alembic's MigrationContext, which logs two INFO lines
    # per call: too chatty for a probe hit every few seconds.
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Never touches the database."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at the migrations' head."""
    head = _head_revision()
    try:
        revision = database_revision(request.app.state.engine)
    except Exception as exc:
        # The reason goes to the log only: this endpoint is unauthenticated.
        logger.warning("readiness: database unreachable: %s", type(exc).__name__, exc_info=True)
        return _not_ready(
            "database unreachable",
            {"database": "unreachable", "error": type(exc).__name__},
        )
    if revision != head:
        migrations = "not_migrated" if revision is None else "behind_head"
        return _not_ready(
            "database migrations are not at head: run `verbcal migrate`",
            {"database": "ok", "migrations": migrations, "revision": revision, "head": head},
        )
    return JSONResponse(
        {"status": "ready", "database": "ok", "migrations": "at_head", "revision": revision}
    )


def _not_ready(message: str, details: dict) -> JSONResponse:
    return JSONResponse(status_code=503, content=error_body("not_ready", message, details))


def _metrics_token_ok(request: Request) -> bool:
    token = request.app.state.settings.metrics_token
    if token is None or not token.get_secret_value():
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.get_secret_value().encode()
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition (job gauges are read from the database now)."""
    if not _metrics_token_ok(request):
        return JSONResponse(
            status_code=401,
            content=error_body("unauthenticated", "send `Authorization: Bearer <metrics token>`"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(get_metrics(request).exposition(), media_type=CONTENT_TYPE_LATEST)
