"""Request-scoped dependencies: settings, the database session (which commits), auth."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.api.capacity import SESSION_GATE, DatabaseGate
from app.api.limits import PRINCIPAL_SCOPE_KEY
from app.config import Settings
from app.db import DbRunner
from app.errors import AuthenticationError, PermissionDeniedError
from app.observability import Metrics, get_metrics
from app.services import keys
from app.services.keys import Principal

T = TypeVar("T")


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


def database_gate(request: Request) -> DatabaseGate:
    return request.app.state.db_gate


async def run_in_db_thread(request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run blocking database work in one of the process's database slots (``db_threads``).

    When the first argument is the request's session, the work is a unit: it commits (or rolls
    back) in the same slot, so no connection is held between slots (see ``app.api.capacity``).
    """
    gate = database_gate(request)
    if args and isinstance(args[0], Session):
        return await gate.run_unit(args[0], function, *args[1:])
    return await gate.run(function, *args)


def roll_back_request(request: Request) -> None:
    """Have the request's transaction rolled back although its route returned an answer: the
    dashboard draws its error pages itself rather than raising to the exception handlers."""
    request.state.roll_back = True


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, committed by the units of work that use it.

    Plain ``def`` routes run with their commit in one database slot (``DatabaseRoute``);
    ``async`` routes pass the session to ``run_in_db_thread``. Creating a session does no I/O.
    A transaction still open at the end (work done outside a unit) is finished here, in a
    thread that does not wait for a slot (it holds a connection already): committed, or rolled
    back for an error answer marked by :func:`roll_back_request`.
    """
    session: Session = request.app.state.session_factory()
    session.info[SESSION_GATE] = database_gate(request)
    try:
        yield session
    except BaseException:
        if session.in_transaction():
            await anyio.to_thread.run_sync(_rollback_and_close, session, limiter=_own_limiter())
        else:
            session.close()
        raise
    if session.in_transaction():
        failed = getattr(request.state, "roll_back", False)
        finish = _rollback_and_close if failed else _commit_and_close
        await anyio.to_thread.run_sync(finish, session, limiter=_own_limiter())
    else:
        session.close()


def _own_limiter() -> anyio.CapacityLimiter:
    # A limiter per call, as FastAPI uses for leaving sync dependencies: never waits.
    return anyio.CapacityLimiter(1)


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


async def principal_of(app: Any, authorization: str | None) -> Principal:
    """The key named by an ``Authorization: Bearer`` header (remembered per process for
    ``auth_cache_ttl_s``); AuthenticationError when it is missing, unknown or revoked."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise AuthenticationError("missing API key: send `Authorization: Bearer <key>`")
    cache: keys.PrincipalCache = app.state.principal_cache
    principal = cache.get(secret)
    if principal is None:
        factory = app.state.session_factory
        principal = await app.state.db_gate.run(keys.authenticate_principal, factory, secret)
        if principal is None:
            raise AuthenticationError("unknown or revoked API key")
        cache.put(secret, principal)
    return principal


async def authenticate_before_body(scope: MutableMapping[str, Any], authorization: str | None):
    """For ``RequestLimitsMiddleware``: the request's key, checked before its body is read."""
    return await principal_of(scope["app"], authorization)


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated key: already checked before the body for requests that have one."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        principal = await principal_of(request.app, request.headers.get("authorization"))
    return principal


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.role != "admin":
        raise PermissionDeniedError("this operation needs an admin key")
    return principal


AnyKey = Annotated[Principal, Depends(get_principal)]
AdminKey = Annotated[Principal, Depends(require_admin)]
