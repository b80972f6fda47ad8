"""Request limits enforced before and while a body is read (an ASGI middleware).

- Requests that send a body to the API (POST, PUT, PATCH outside ``/admin``) are authenticated
  first: a missing or unknown key is a 401 before a byte of the body is read.
- Each route family has a maximum body size: uploads (``POST /tasks/{name}/examples`` and
  ``/predictions``, and the dashboard's examples upload) ``max_upload_bytes``, everything else
  ``max_body_bytes``. A declared
  ``Content-Length`` over it is refused at once; a body that grows over it while it streams
  (chunked, or a lying length) stops being read. Both are 413 ``payload_too_large``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.api.errors import error_body
from app.config import Settings
from app.errors import ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATH = re.compile(r"^(/admin)?/tasks/[^/]+/(examples|predictions)/?$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PRINCIPAL_SCOPE_KEY = "verbcal.principal"


class PayloadTooLarge(HTTPException):
    """413; an HTTPException so that FastAPI's body parsing passes it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The maximum body size of a request, by route family."""
    if method == "POST" and UPLOAD_PATH.match(path):
        return settings.max_upload_bytes
    return settings.max_body_bytes


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return value.decode("latin-1")
    return None


class RequestLimitsMiddleware:
    """Authentication before the body, and a streamed body size limit per route family."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        authenticate: Callable[[Scope, str | None], Awaitable[Any]],
    ) -> None:
        self.app = app
        self.settings = settings
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = body_limit(self.settings, scope["method"], path)
        if not path.startswith("/admin"):
            try:
                scope[PRINCIPAL_SCOPE_KEY] = await self.authenticate(scope, _authorization(scope))
            except ServiceError as exc:
                status, code, message = exc.status_code, exc.code, exc.message
                await _answer(scope, receive, send, status, code, message, exc.headers)
                return
        length = _content_length(scope)
        if length is not None and length > limit:
            too_large = PayloadTooLarge(limit)
            await _answer(scope, receive, send, 413, "payload_too_large", too_large.detail)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    response = JSONResponse(status_code=status, content=error_body(code, message), headers=headers)
    await response(scope, receive, send)
