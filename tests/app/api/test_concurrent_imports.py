"""Identical imports sent at the same moment both succeed, and the stored rows are the distinct
items (both backends; the database work of the requests runs in concurrent threads)."""

from __future__ import annotations

import anyio
import httpx
from sqlalchemy import func, select

from app.models import Elicitation, Example
from tests.app.factories import LABELS, overconfident_items

COPIES = 4


def _post_concurrently(app, admin_key: str, path: str, body: dict) -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {admin_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers, timeout=60
        ) as client:
            responses: list[httpx.Response] = []

            async def send() -> None:
                responses.append(await client.post(path, json=body))

            async with anyio.create_task_group() as tasks:
                for _ in range(COPIES):
                    tasks.start_soon(send)
            return responses

    return anyio.run(send_all)


def _count(session_factory, model) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_identical_concurrent_prediction_imports_all_succeed(
    client, app, admin_key, session_factory
):
    client.post("/tasks", json={"name": "t", "labels": LABELS}).raise_for_status()
    items = overconfident_items(300)
    responses = _post_concurrently(app, admin_key, "/tasks/t/predictions", {"items": items})
    assert [r.status_code for r in responses] == [200] * COPIES, [r.text for r in responses]
    assert sum(r.json()["inserted"] for r in responses) == len(items)
    assert _count(session_factory, Example) == len(items)
    assert _count(session_factory, Elicitation) == len(items)


def test_identical_concurrent_example_uploads_all_succeed(client, app, admin_key, session_factory):
    client.post("/tasks", json={"name": "t", "labels": LABELS}).raise_for_status()
    examples = [
        {"id": f"ex-{i}", "text": item["text"], "label": item["label"]}
        for i, item in enumerate(overconfident_items(300))
    ]
    responses = _post_concurrently(app, admin_key, "/tasks/t/examples", {"examples": examples})
    assert [r.status_code for r in responses] == [200] * COPIES, [r.text for r in responses]
    assert sum(r.json()["inserted"] for r in responses) == len(examples)
    assert _count(session_factory, Example) == len(examples)
