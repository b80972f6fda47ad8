"""Fixtures: the simulated LLM as a real uvicorn HTTP server on loopback, and async helpers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from app.llm.client import aclose_endpoint_clients
from app.llm.simulator import SimulatorSettings, running_simulator

T = TypeVar("T")


@dataclass
class SimulatorHandle:
    """A running simulator: its OpenAI base URL and its simulator-only stats endpoints."""

    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_sim/stats", timeout=5).json()

    def reset(self) -> None:
        httpx.post(f"{self.root}/_sim/reset", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def default_simulator() -> Iterator[SimulatorHandle]:
    """One shared simulator with default settings (reset it via the `simulator` fixture)."""
    with running_simulator(SimulatorSettings()) as base_url:
        yield SimulatorHandle(base_url)


@pytest.fixture
def simulator(default_simulator: SimulatorHandle) -> SimulatorHandle:
    """The shared default simulator with its counters and fault draw reset."""
    default_simulator.reset()
    return default_simulator


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., SimulatorHandle]]:
    """Start a dedicated simulator with the given settings; stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> SimulatorHandle:
            base_url = stack.enter_context(running_simulator(SimulatorSettings(**settings)))
            return SimulatorHandle(base_url)

        yield start


def _run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    async def wrapped() -> T:
        try:
            return await coroutine
        finally:
            await aclose_endpoint_clients()

    return asyncio.run(wrapped())


@pytest.fixture
def run_async() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine in a fresh event loop, closing the shared LLM clients afterwards."""
    return _run_async
