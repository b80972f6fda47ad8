"""The shared HTTP clients and in-flight limits of an event loop.

Per event loop, one ``AsyncOpenAI`` per (base URL, key) is shared, with a connection pool larger
than any allowed concurrency, and one ``asyncio.Semaphore`` per base URL bounds in-flight
requests. The semaphore is sized by the ``concurrency`` of the first config that uses that URL in
the loop, and is held only while a request is in flight, never during a backoff wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref

import openai
from openai import AsyncOpenAI

from app.llm.config import LLMConfig

try:  # openai >= 3 speaks httpx2; older releases speak httpx.
    import httpx2 as _http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as _http

_POOL_CONNECTIONS = 512  # above the largest allowed concurrency, so the pool never throttles


class EndpointPool:
    """The shared clients and in-flight limits of one event loop."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], AsyncOpenAI] = {}
        self.limits: dict[str, asyncio.Semaphore] = {}

    def client(self, config: LLMConfig, api_key: str) -> AsyncOpenAI:
        key_digest = hashlib.sha256(api_key.encode()).hexdigest()
        slot = (config.base_url, key_digest)
        if slot not in self.clients:
            limits = _http.Limits(
                max_connections=_POOL_CONNECTIONS, max_keepalive_connections=_POOL_CONNECTIONS
            )
            self.clients[slot] = AsyncOpenAI(
                api_key=api_key,
                base_url=config.base_url,
                timeout=config.timeout_s,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(limits=limits),
            )
        return self.clients[slot]

    def limit(self, config: LLMConfig) -> asyncio.Semaphore:
        if config.base_url not in self.limits:
            self.limits[config.base_url] = asyncio.Semaphore(config.concurrency)
        return self.limits[config.base_url]

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.close()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EndpointPool] = (
    weakref.WeakKeyDictionary()
)


def current_pool() -> EndpointPool:
    loop = asyncio.get_running_loop()
    if loop not in _pools:
        _pools[loop] = EndpointPool()
    return _pools[loop]


async def aclose_endpoint_clients() -> None:
    """Close the shared HTTP clients of the running event loop (call before the loop ends)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()
