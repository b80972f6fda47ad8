"""The database gate: at most ``db_threads`` requests do database work at once per process.

Why: a request that held a pooled connection while it waited for a thread slot, while threads
that held slots waited for connections, stalled the whole process under load (every request
timed out, and recovery took minutes). The rules that rule this out:

- A pooled connection is checked out only inside a slot: each unit of database work runs in
  one thread and ends by committing (or rolling back) the request's session, which returns the
  connection to the pool before the slot is released.
- The pool holds ``db_threads + db_pool_spare`` connections (``app.db.pool_size``): the spare
  ones serve the embedded job worker and readiness probes, so a slot never waits for one.
- At most ``db_queue`` requests wait for a slot; beyond that a request is answered at once with
  503 ``overloaded`` and ``Retry-After`` rather than queued without bound.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from app.errors import OverloadedError

T = TypeVar("T")
RETRY_AFTER_S = 1


class DatabaseGate:
    """A bounded set of thread slots for database work, with a bounded queue in front."""

    def __init__(self, threads: int, queue: int) -> None:
        self.threads = threads
        self.queue = queue
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: an anyio limiter belongs to the event loop that first uses it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread once a slot is free; 503 if too many wait."""
        limiter = self.limiter
        if limiter.available_tokens < 1 and limiter.statistics().tasks_waiting >= self.queue:
            raise OverloadedError(
                "the server is at capacity: retry shortly",
                {"retry_after_s": RETRY_AFTER_S},
                retry_after_s=RETRY_AFTER_S,
            )
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=limiter)

    async def run_unit(self, session: Session, function: Callable[..., T], *args: Any) -> T:
        """``function(session, *args)`` in a slot, then commit: the connection is back in the
        pool before the slot is released. Any exception rolls the unit back."""
        return await self.run(_unit_of_work, session, function, args)


def _unit_of_work(session: Session, function: Callable[..., T], args: tuple[Any, ...]) -> T:
    try:
        result = function(session, *args)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def run_sync_endpoint(endpoint: Callable[..., T], session: Session, kwargs: dict[str, Any]) -> T:
    """A plain ``def`` route body and its commit, in one unit (see ``DatabaseRoute``)."""
    return _unit_of_work(session, lambda _session: endpoint(**kwargs), ())


SESSION_GATE = "verbcal.gate"


def _session_parameter(endpoint: Callable[..., Any]) -> str | None:
    """The name of the endpoint's request-session parameter (a ``SessionDep``), if any."""
    from app.api.deps import get_session

    for name, hint in typing.get_type_hints(endpoint, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            if getattr(meta, "dependency", None) is get_session:
                return name
    return None


def in_database_slot(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a plain ``def`` endpoint that takes the request session so that its body and the
    commit run in one database slot. Other endpoints are returned unchanged."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint
    name = _session_parameter(endpoint)
    if name is None:
        return endpoint

    @functools.wraps(endpoint)
    async def endpoint_in_slot(**kwargs: Any) -> Any:
        session: Session = kwargs[name]
        gate: DatabaseGate = session.info[SESSION_GATE]
        return await gate.run(run_sync_endpoint, endpoint, session, kwargs)

    return endpoint_in_slot


class DatabaseRoute(APIRoute):
    """An API route whose plain ``def`` endpoint, if it uses the request session, runs in a
    database slot and commits there (``in_database_slot``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_database_slot(endpoint), **kwargs)
