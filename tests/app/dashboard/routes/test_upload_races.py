"""Identical dashboard uploads at the same moment all succeed, on both databases, like the
API's imports (tests/app/api/test_concurrent_imports.py)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.models import Example
from app.services import tasks as task_service
from tests.app.conftest import BACKENDS, emptied_after
from tests.app.dashboard.conftest import page_csrf
from tests.app.factories import LABELS, overconfident_items

COPIES = 4


@pytest.fixture(params=BACKENDS)
def database_url(request) -> Iterator[str]:
    """Both backends here, unlike the other dashboard tests: the race is PostgreSQL's."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    yield from emptied_after(request.getfixturevalue(fixture))


def _upload_concurrently(app, cookies, token: str, content: bytes) -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies, timeout=60
        ) as client:
            responses: list[httpx.Response] = []

            async def send() -> None:
                files = {"file": ("examples.csv", content, "text/csv")}
                response = await client.post(
                    "/admin/tasks/t/examples", data={"csrf_token": token}, files=files
                )
                responses.append(response)

            async with anyio.create_task_group() as tasks:
                for _ in range(COPIES):
                    tasks.start_soon(send)
            return responses

    return anyio.run(send_all)


def test_identical_concurrent_dashboard_uploads_all_succeed(admin_client, app, session_factory):
    with transaction(session_factory) as session:
        task_service.create_task(session, {"name": "t", "labels": LABELS})
    items = overconfident_items(300)
    content = "id,text,label\n" + "".join(
        f"ex-{i},{item['text']},{item['label']}\n" for i, item in enumerate(items)
    )
    token = page_csrf(admin_client, "/admin/tasks/t")
    cookies = dict(admin_client.cookies.items())
    responses = _upload_concurrently(app, cookies, token, content.encode())
    assert [r.status_code for r in responses] == [303] * COPIES, [r.text for r in responses]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Example)) == len(items)
