"""The database gate: bounded slots, a bounded queue (503 beyond it), units that commit."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.capacity import DatabaseGate
from app.errors import OverloadedError
from app.main import create_app
from app.models import Task


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_the_gate_sheds_beyond_its_queue_and_serves_right_after():
    gate = DatabaseGate(threads=1, queue=1)
    release = threading.Event()
    outcomes: list[str] = []

    async def scenario() -> None:
        async def call(name: str) -> None:
            try:
                await gate.run(release.wait)
                outcomes.append(f"{name} ok")
            except OverloadedError as exc:
                outcomes.append(f"{name} {exc.code} {exc.headers['Retry-After']}")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "first")  # takes the slot
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(call, "second")  # the one place in the queue
            await anyio.wait_all_tasks_blocked()
            await call("third")  # beyond the queue: shed at once
            release.set()
        await call("after")

    anyio.run(scenario)
    assert outcomes == ["third overloaded 1", "first ok", "second ok", "after ok"]


def test_a_unit_commits_and_returns_its_connection(app):
    gate = DatabaseGate(threads=2, queue=0)
    session = app.state.session_factory()

    def add_task(session, name: str) -> str:
        session.add(Task(name=name, labels=["a", "b"]))
        session.flush()
        return name

    assert anyio.run(gate.run_unit, session, add_task, "unit") == "unit"
    assert not session.in_transaction()
    assert app.state.engine.pool.checkedout() == 0
    with app.state.session_factory() as other:
        assert other.scalar(select(Task.name).where(Task.name == "unit")) == "unit"

    def fail(session) -> None:
        session.add(Task(name="rolled-back", labels=["a", "b"]))
        session.flush()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        anyio.run(gate.run_unit, session, fail)
    assert app.state.engine.pool.checkedout() == 0
    with app.state.session_factory() as other:
        assert other.scalar(select(Task.name).where(Task.name == "rolled-back")) is None


def test_the_pool_has_a_connection_per_slot_plus_the_spare_ones(settings):
    settings = settings.model_copy(update={"db_threads": 3, "db_pool_spare": 2})
    app = create_app(settings, start_worker=False)
    assert settings.db_pool_size == 5
    assert app.state.engine.pool.size() == 5
    assert app.state.engine.pool._max_overflow == 0
    app.state.engine.dispose()


def test_a_full_queue_is_a_503_with_retry_after(settings, admin_key):
    settings = settings.model_copy(update={"db_threads": 1, "db_queue": 0})
    app = create_app(settings, start_worker=False)
    headers = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(app, headers=headers) as client:
        gate: DatabaseGate = app.state.db_gate
        release = threading.Event()
        held = client.portal.start_task_soon(gate.run, release.wait)
        _wait_until(lambda: client.portal.call(lambda: gate.limiter.borrowed_tokens) == 1)

        shed = client.get("/tasks")
        assert shed.status_code == 503
        assert shed.headers["Retry-After"] == "1"
        assert shed.json()["error"]["code"] == "overloaded"

        release.set()
        held.result(timeout=10)
        assert client.get("/tasks").status_code == 200
        assert app.state.engine.pool.checkedout() == 0
    app.state.engine.dispose()
