"""The API under a burst of concurrent requests, against a real `verbcal serve` process.

Far more requests in flight than the server's database threads and pool: every request must
get an answer (200, or 503 `overloaded` with Retry-After when shed), none may time out or
fail with a 500, and the server must serve normally right after the burst. Counts, not
timings: the client's timeout is generous and only catches a stall.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.e2e.processes import processes, serve_migrated

pytestmark = [pytest.mark.slow]

LABELS = ["billing", "bug", "other"]
REQUESTS = 2_000
CONCURRENCY = 96
CLIENT_TIMEOUT_S = 20.0
# A stall detector, far above the ~20 s the burst takes on a loaded 2-core machine: requests
# not sent by then count as unanswered.
BURST_BUDGET_S = 180.0
AFTER_BURST = 20


def _request(index: int) -> tuple[str, str, dict | None]:
    """Mostly /calibrate (async route), some task reads (sync route) and 404 feedback."""
    if index % 10 == 0:
        return "GET", "/tasks/load", None
    if index % 10 == 1:
        return "POST", "/feedback", {"id": f"missing-{index}", "label": "bug"}
    share = (index % 7 + 1) / 10
    probabilities = {"billing": share, "bug": (1 - share) / 2, "other": (1 - share) / 2}
    return "POST", "/calibrate", {"task": "load", "probabilities": probabilities}


async def _burst(client: httpx.AsyncClient) -> tuple[Counter, list[httpx.Response]]:
    outcomes: Counter = Counter()
    shed: list[httpx.Response] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(REQUESTS):
        queue.put_nowait(index)

    deadline = asyncio.get_running_loop().time() + BURST_BUDGET_S

    async def user() -> None:
        while not queue.empty():
            if asyncio.get_running_loop().time() > deadline:
                outcomes["not sent"] += queue.qsize()
                while not queue.empty():
                    queue.get_nowait()
                return
            method, path, body = _request(queue.get_nowait())
            try:
                response = await client.request(method, path, json=body)
            except httpx.TimeoutException:
                outcomes["timeout"] += 1
                continue
            except httpx.TransportError as exc:
                outcomes[type(exc).__name__] += 1
                continue
            outcomes[response.status_code] += 1
            if response.status_code == 503:
                shed.append(response)

    await asyncio.gather(*(user() for _ in range(CONCURRENCY)))
    return outcomes, shed


def _run_load(database_url: str, tmp_path) -> None:
    with processes(tmp_path) as started:
        base_url, admin_key, _ = serve_migrated(started, database_url)
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            client.post("/tasks", json={"name": "load", "labels": LABELS}).raise_for_status()

        async def scenario() -> tuple[Counter, list[httpx.Response]]:
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
            async with httpx.AsyncClient(
                base_url=base_url, headers=headers, timeout=CLIENT_TIMEOUT_S, limits=limits
            ) as client:
                return await _burst(client)

        outcomes, shed = asyncio.run(scenario())
        print(f"burst of {REQUESTS} at concurrency {CONCURRENCY}: {dict(outcomes)}")
        assert sum(outcomes.values()) == REQUESTS
        assert set(outcomes) <= {200, 404, 503}, (outcomes, started.log("api")[-3000:])
        assert outcomes[404] == REQUESTS // 10  # every feedback for a missing id, no more
        assert outcomes[200] > 0
        for response in shed:
            assert response.json()["error"]["code"] == "overloaded"
            assert int(response.headers["Retry-After"]) >= 1

        # Right after the burst: served normally, one request at a time.
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            after = Counter(
                client.post("/calibrate", json=_request(2)[2]).status_code
                for _ in range(AFTER_BURST)
            )
        assert after == Counter({200: AFTER_BURST}), after


def test_a_burst_on_sqlite_gets_answers_and_no_stall(tmp_path):
    _run_load(f"sqlite:///{tmp_path / 'load.db'}", tmp_path)


@pytest.mark.postgres
def test_a_burst_on_postgres_gets_answers_and_no_stall(tmp_path, fresh_postgres_database):
    _run_load(fresh_postgres_database, tmp_path)
