"""Elicitation throughput against the simulated LLM with a fixed answer delay.

The simulator runs in its own process (uvicorn), so it does not compete with the client for the
GIL; every answer takes ``--delay`` seconds. With ``--concurrency`` requests in flight the ideal
throughput is concurrency / delay (32 / 0.1 s = 320 requests/s); the script prints the achieved
throughput and its ratio to the ideal (target ≥ 0.8).

    .venv/bin/python benchmarks/bench_elicitation.py [--texts 2000 --concurrency 32 --delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.llm.client import LLMClient, aclose_endpoint_clients  # noqa: E402
from app.llm.config import LLMConfig  # noqa: E402
from app.llm.synthetic import TICKET_LABELS, generate_examples  # noqa: E402
from prompts import load_template  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def simulator_process(delay_s: float) -> Iterator[tuple[str, int]]:
    """Run ``python -m app.llm.simulator`` in a subprocess; yield (base URL, pid) once up."""
    port = free_port()
    command = [sys.executable, "-m", "app.llm.simulator", "--port", str(port)]
    process = subprocess.Popen([*command, "--delay", str(delay_s)], cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.1)
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


async def measure(base_url: str, texts: list[str], concurrency: int) -> tuple[float, float, int]:
    """Wall seconds, client CPU seconds and failed items for eliciting every text once."""
    config = LLMConfig(
        base_url=base_url, model="verbcal-simulated-llm", temperature=0, concurrency=concurrency
    )
    client = LLMClient(config, load_template())
    labels = list(TICKET_LABELS)
    try:
        await client.elicit_many(texts[:concurrency], labels)  # warm up the connection pool
        started, cpu_started = time.perf_counter(), time.process_time()
        results = await client.elicit_many(texts, labels, concurrency=concurrency)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await aclose_endpoint_clients()
    return elapsed, cpu, sum(result.status == "failed" for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args()
    texts = [example.text for example in generate_examples(args.texts, seed=0)]
    with simulator_process(args.delay) as (base_url, pid):
        server_cpu_started = process_cpu_seconds(pid)
        elapsed, cpu, failed = asyncio.run(measure(base_url, texts, args.concurrency))
        server_cpu_ended = process_cpu_seconds(pid)
    throughput = len(texts) / elapsed
    ideal = args.concurrency / args.delay
    print(f"texts            {len(texts)} ({failed} failed)")
    print(f"elapsed          {elapsed:.2f} s")
    print(f"throughput       {throughput:.1f} requests/s")
    print(f"ideal            {ideal:.1f} requests/s (concurrency {args.concurrency} / delay)")
    print(f"ratio            {throughput / ideal:.3f} (target >= 0.8)")
    # Near 100% of a core, the client itself is the bottleneck (its event loop is one thread).
    print(
        f"client CPU       {cpu / len(texts) * 1000:.2f} ms/request, {cpu / elapsed:.0%} of a core"
    )
    if server_cpu_started is not None and server_cpu_ended is not None:
        server_cpu = server_cpu_ended - server_cpu_started  # includes the warm-up requests
        print(
            f"simulator CPU    {server_cpu / len(texts) * 1000:.2f} ms/request, "
            f"{server_cpu / elapsed:.0%} of a core"
        )
    print(f"machine load     {os.getloadavg()[0]:.2f} (1-min average; other work skews the ratio)")


if __name__ == "__main__":
    main()
