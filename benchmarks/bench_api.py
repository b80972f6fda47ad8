"""Throughput of POST /calibrate (with probabilities) against a bare FastAPI endpoint.

Both servers run as one uvicorn worker in a subprocess and are loaded the same way, one after
the other, by an asyncio httpx client with ``--concurrency`` requests in flight. The bare
endpoint returns a JSON body of the same size as a /calibrate answer without doing any work,
so the ratio (ours / bare) is what verbcal's validation, auth, database write and calibration
cost. Target: ratio >= 0.5. Then POST /calibrate/batch with 1,000 items: time per item.

    .venv/bin/python benchmarks/bench_api.py [--requests 3000 --concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.db import create_db_engine, create_session_factory, transaction  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.schemas.calibrations import FitRequest  # noqa: E402
from app.services import fitting, keys, predictions, tasks  # noqa: E402

LABELS = ["billing", "technical", "account", "other"]
BARE_APP = """
from fastapi import FastAPI, Request
from fastapi.responses import Response

BODY = open({body_path!r}, "rb").read()
app = FastAPI()


@app.post("/calibrate")
async def calibrate(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *args,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{url}/healthz", timeout=1)
                break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def prepare_database(url: str) -> str:
    """Migrate, create a task with a fitted calibration, return an app key."""
    upgrade_to_head(url)
    rng = np.random.default_rng(0)
    z = rng.normal(scale=1.5, size=(500, len(LABELS)))
    p = np.exp(2 * z)
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, len(LABELS), 500)
    items = [
        {
            "text": f"t{i}",
            "label": LABELS[y[i]],
            "probabilities": dict(zip(LABELS, p[i], strict=True)),
        }
        for i in range(500)
    ]
    settings = Settings(database_url=url)
    factory = create_session_factory(create_db_engine(url))
    with transaction(factory) as session:
        task = tasks.create_task(session, {"name": "bench", "labels": LABELS})
        predictions.import_predictions(session, task, items, settings)
        fitting.fit_task(session, task, FitRequest(), settings)
        _, secret = keys.create_key(session, "app")
    return secret


async def load(url: str, body: dict, headers: dict, n: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        payload = json.dumps(body).encode()
        json_headers = {"Content-Type": "application/json"}
        remaining = n

        async def user() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                r = await client.post("/calibrate", content=payload, headers=json_headers)
                latencies.append(time.perf_counter() - start)
                r.raise_for_status()

        for _ in range(concurrency):  # warm-up: open the connections
            await client.post("/calibrate", content=payload, headers=json_headers)
        start = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "throughput": n / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def batch_time_per_item(url: str, headers: dict, n_items: int, repeat: int) -> float:
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(len(LABELS)), size=n_items)
    body = {
        "task": "bench",
        "items": [{"probabilities": dict(zip(LABELS, row.tolist(), strict=True))} for row in P],
    }
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for _ in range(repeat):
            start = time.perf_counter()
            r = client.post("/calibrate/batch", json=body)
            times.append(time.perf_counter() - start)
            r.raise_for_status()
            assert r.json()["succeeded"] == n_items
    return min(times) / n_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-items", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        app_key = prepare_database(db_url)
        env = {
            "VERBCAL_DATABASE_URL": db_url,
            "VERBCAL_EMBEDDED_WORKER": "false",
            "VERBCAL_LOG_LEVEL": "WARNING",
            "VERBCAL_MAX_BATCH_SIZE": str(max(args.batch_items, 1000)),
        }
        headers = {"Authorization": f"Bearer {app_key}"}
        body = {
            "task": "bench",
            "probabilities": {"billing": 0.9, "technical": 0.05, "account": 0.05, "other": 0.0},
        }
        with server(["app.main:create_app", "--factory"], env) as url:
            sample = httpx.post(f"{url}/calibrate", json=body, headers=headers).content
            ours = asyncio.run(load(url, body, headers, args.requests, args.concurrency))
            per_item = batch_time_per_item(url, headers, args.batch_items, repeat=3)
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(sample)
        (Path(tmp) / "bare_app.py").write_text(BARE_APP.format(body_path=str(body_path)))
        bare_env = {"PYTHONPATH": tmp}
        with server(["bare_app:app"], bare_env) as url:
            httpx_ok = httpx.get(f"{url}/docs").status_code == 200
            assert httpx_ok
            bare = asyncio.run(load(url, body, {}, args.requests, args.concurrency))

    print(
        f"POST /calibrate (probabilities), {args.requests} requests, {args.concurrency} in flight"
    )
    for name, m in (("verbcal", ours), ("bare", bare)):
        print(
            f"  {name:8}: {m['throughput']:8.1f} req/s  "
            f"p50 {m['p50_ms']:6.1f} ms  p99 {m['p99_ms']:6.1f} ms"
        )
    ratio = ours["throughput"] / bare["throughput"]
    print(f"  ratio verbcal/bare throughput: {ratio:.2f} (target >= 0.5)")
    print(f"  response size: {len(sample)} bytes")
    print(f"POST /calibrate/batch with {args.batch_items} items: {per_item * 1e3:.3f} ms per item")


if __name__ == "__main__":
    main()
