"""Request-scoped dependencies: settings, the database session (which commits), auth."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import DbRunner
from app.errors import AuthenticationError, PermissionDeniedError
from app.observability import Metrics, get_metrics
from app.services import keys
from app.services.keys import Principal


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


async def run_in_db_thread(request: Request, function, *args):
    """Run blocking database work in a worker thread, at most ``db_threads`` at once.

    A few threads keep the database busy; more only contend for the GIL and, on SQLite, for
    its single write lock (whose busy handler sleeps), which multiplies tail latency.
    """
    return await anyio.to_thread.run_sync(
        functools.partial(function, *args), limiter=request.app.state.db_limiter
    )


def roll_back_request(request: Request) -> None:
    """Have the request's transaction rolled back although its route returned an answer: the
    dashboard draws its error pages itself rather than raising to the exception handlers."""
    request.state.roll_back = True


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error
    (an exception, or an error answer marked by :func:`roll_back_request`).

    Creating a session does no I/O; its queries run in the (sync) route's thread and the
    commit in one threadpool call, which saves two threadpool hops per request over a sync
    generator dependency.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        await run_in_db_thread(request, _rollback_and_close, session)
        raise
    failed = getattr(request.state, "roll_back", False)
    await run_in_db_thread(request, _rollback_and_close if failed else _commit_and_close, session)


async def _db_runner(request: Request) -> DbRunner:
    return functools.partial(run_in_db_thread, request)


async def _request_metrics(request: Request) -> Metrics:
    # async: a plain `def` dependency would cost a threadpool hop per request.
    return get_metrics(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(_request_metrics)]
DbRunnerDep = Annotated[DbRunner, Depends(_db_runner)]
# scope="function": the commit happens before the response is sent, so a failed commit is an
# error answer rather than a success answer for lost data.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated key (remembered per process for ``auth_cache_ttl_s``)."""
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("missing API key: send `Authorization: Bearer <key>`")
    secret = credentials.credentials
    cache: keys.PrincipalCache = request.app.state.principal_cache
    principal = cache.get(secret)
    if principal is None:
        factory = request.app.state.session_factory
        principal = await run_in_threadpool(keys.authenticate_principal, factory, secret)
        if principal is None:
            raise AuthenticationError("unknown or revoked API key")
        cache.put(secret, principal)
    return principal


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.role != "admin":
        raise PermissionDeniedError("this operation needs an admin key")
    return principal


AnyKey = Annotated[Principal, Depends(get_principal)]
AdminKey = Annotated[Principal, Depends(require_admin)]
