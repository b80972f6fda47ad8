"""The FastAPI application factory: `create_app(settings)` wires storage, routes and workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.capacity import DatabaseGate
from app.api.deps import authenticate_before_body
from app.api.errors import install_error_handlers
from app.api.limits import RequestLimitsMiddleware
from app.api.openapi import install_openapi
from app.api.router import api_router
from app.config import Settings, get_settings
from app.dashboard import install_dashboard
from app.db import create_db_engine, create_session_factory, is_sqlite
from app.observability import install_observability
from app.services.keys import PrincipalCache


def embedded_worker_enabled(settings: Settings) -> bool:
    if settings.embedded_worker is not None:
        return settings.embedded_worker
    return is_sqlite(settings.database_url)


def create_app(settings: Settings | None = None, *, start_worker: bool | None = None) -> FastAPI:
    """Build the app. ``start_worker`` overrides the settings' embedded-worker choice."""
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url, pool_size=settings.db_pool_size)
    session_factory = create_session_factory(engine)
    run_worker = embedded_worker_enabled(settings) if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if run_worker:
            from app.jobs.worker import EmbeddedWorker

            worker = EmbeddedWorker(session_factory, settings)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            engine.dispose()

    app = FastAPI(
        title="verbcal",
        version="0.1.0",
        summary="Calibrated probabilities from the distributions LLMs verbalize.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.db_gate = DatabaseGate(settings.db_threads, settings.db_queue)
    app.state.principal_cache = PrincipalCache(settings.auth_cache_ttl_s)
    install_error_handlers(app)
    app.add_middleware(
        RequestLimitsMiddleware, settings=settings, authenticate=authenticate_before_body
    )
    install_observability(app, settings)  # outermost: logs and counts refused requests too
    app.include_router(api_router)
    install_dashboard(app)
    install_openapi(app)
    return app
