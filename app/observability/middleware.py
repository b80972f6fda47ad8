"""The request-context middleware: request id, access log line and HTTP metrics per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Mount

from app.observability.logs import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_var,
    sane_request_id,
)
from app.observability.metrics import Metrics

UNMATCHED_ROUTE = "unmatched"

access_logger = logging.getLogger("verbcal.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()


def route_template(scope: Scope) -> str:
    """The matched route's template (``/tasks/{name}``), ``unmatched`` when none matched.

    Templates, not raw paths, keep metric label cardinality bounded.
    """
    # Inside a Mount, templates are relative to it; root_path has grown by the mount's path.
    root_path = scope.get("root_path", "")
    app_root_path = scope.get("app_root_path", root_path)
    prefix = root_path[len(app_root_path) :] if root_path.startswith(app_root_path) else ""
    route = scope.get("route")
    if route is None:
        # FastAPI records only its own APIRoutes in scope["route"]; a mounted app (static
        # files) leaves its endpoint and the grown root_path.
        if prefix and "endpoint" in scope:
            return f"{prefix}/{{path}}"
        return UNMATCHED_ROUTE
    if isinstance(route, Mount):
        return f"{prefix}/{{path}}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return f"{prefix}{template}" if template else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Request id, access log line and HTTP metrics, as plain ASGI (no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _REQUEST_ID_HEADER_BYTES:
                incoming = sane_request_id(value.decode("latin-1"))
                break
        request_id = incoming or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"]
            route = route_template(scope)
            self.metrics.record_http(method, route, status, seconds)
            if access_logger.isEnabledFor(logging.INFO):
                log_access(method, route, status, round(seconds * 1000, 2))
            request_id_var.reset(token)


def log_access(method: str, route: str, status: int, duration_ms: float) -> None:
    # The record is built directly: Logger.info would walk the stack to find the caller,
    # which costs more than everything else the middleware does.
    record = logging.LogRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.2fms",
        (method, route, status, duration_ms),
        None,
    )
    record.method = method
    record.route = route
    record.status = status
    record.duration_ms = duration_ms
    access_logger.handle(record)
