"""Engine and session construction. SQLite gets foreign keys, WAL and a busy timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Command-line tools and worker processes need few connections; the API sizes its pool from
# its settings (`Settings.db_pool_size`).
DEFAULT_POOL_SIZE = 5
# Seconds a thread may wait for a pooled connection. The API's slots never wait (the pool has
# a connection per slot); a timeout there is answered 503 `overloaded`, not 500.
POOL_TIMEOUT_S = 10

# Runs blocking database work off the event loop: ``await run_db(function, *args)``. The API's
# is ``app.api.deps.run_in_db_thread`` bound to the request (``DbRunnerDep``).
DbRunner = Callable[..., Awaitable[Any]]


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_db_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """Create the engine for ``url`` with at most ``pool_size`` connections (no overflow).

    SQLite connections are configured on connect.
    """
    # hide_parameters: errors and logs never quote bound values (example texts, key hashes).
    pool = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_S,
        "hide_parameters": True,
    }
    if is_sqlite(url):
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if make_url(url).database in (None, "", ":memory:"):
            pool = {"hide_parameters": True}  # one shared connection
        engine = create_engine(url, connect_args=connect_args, **pool)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


# Attempts of a unit that lost a race on a unique key (see ``retry_on_write_race``).
WRITE_RACE_ATTEMPTS = 3


def _lost_write_race(exc: BaseException) -> bool:
    """A unique-key violation, raised directly or as the cause of a service's error."""
    return isinstance(exc, IntegrityError) or isinstance(exc.__cause__, IntegrityError)


def retry_on_write_race(session: Session, function: Callable[..., T], *args: Any) -> T:
    """``function(session, *args)``, run again after a rollback when it lost a race on a
    unique key: a concurrent transaction inserted the same rows first. The next attempt sees
    them (and updates or keeps them), so identical concurrent upserts all succeed.

    A violation that persists is the function's own (e.g. rows that swap unique values) and
    is raised after the last attempt.
    """
    for attempt in range(1, WRITE_RACE_ATTEMPTS + 1):
        try:
            return function(session, *args)
        except Exception as exc:
            if attempt == WRITE_RACE_ATTEMPTS or not _lost_write_race(exc):
                raise
            session.rollback()
    raise AssertionError("unreachable")


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
