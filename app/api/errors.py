"""Exception handlers producing the standard error body, and OpenAPI declarations of it."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.errors import OverloadedError, ServiceError

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or unknown API key",
    403: "The API key's role does not allow this",
    404: "Not found",
    409: "Conflict with the stored state (`conflict`), or a task not ready for this request "
    "(`task_not_ready`: no LLM config, too few labelled distributions)",
    413: "Request too large",
    422: "Invalid input; `details` names the field or row",
    502: "The task's LLM failed or gave an unusable answer",
    503: "The server is at capacity (`overloaded`, with `Retry-After`)",
    504: "The task's LLM timed out",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses (401, 422 and 503 always)."""
    codes = sorted({401, 422, 503, *status_codes})
    return {c: {"model": ErrorResponse, "description": _DESCRIPTIONS[c]} for c in codes}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or ".".join(str(p) for p in loc)


def _row_of(loc: tuple[Any, ...]) -> int | None:
    # A batch row is the first integer index in the location (examples[3].label -> 3).
    for part in loc:
        if isinstance(part, int):
            return part
    return None


async def _validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    details = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        entry: dict[str, Any] = {"field": _location(loc), "message": err.get("msg", "")}
        row = _row_of(loc)
        if row is not None:
            entry["row"] = row
        details.append(entry)
    first = details[0] if details else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return JSONResponse(status_code=422, content=error_body("validation_error", message, details))


async def _service_handler(_request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(exc.code, exc.message, exc.details),
        headers=exc.headers,
    )


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. JSON nested too deeply): invalid input.
        return JSONResponse(
            status_code=422,
            content=error_body(
                "validation_error",
                f"invalid request body: {exc.detail}",
                [{"field": "body", "message": str(exc.detail)}],
            ),
        )
    code = {
        401: "unauthenticated",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(exc.status_code, "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return JSONResponse(
        status_code=exc.status_code, content=error_body(code, str(exc.detail)), headers=headers
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette names only the first
    matching route's)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def _pool_timeout_handler(_request: Request, exc: PoolTimeoutError) -> JSONResponse:
    # A thread waited too long for a pooled connection: the process is at capacity.
    logger.warning("database pool exhausted: %s", exc)
    overloaded = OverloadedError("the server is at capacity: retry shortly")
    return await _service_handler(_request, overloaded)


async def _unexpected_handler(_request: Request, exc: Exception) -> JSONResponse:
    # An exception's message may quote request data (a database error quotes the texts it
    # failed to store): ERROR names the exception and where it was raised, DEBUG has it all.
    logger.error("unhandled error: %s\n%s", type(exc).__name__, where_raised(exc))
    logger.debug("unhandled error, in full", exc_info=exc)
    return JSONResponse(status_code=500, content=error_body("internal_error", "internal error"))


def where_raised(exc: BaseException) -> str:
    """The traceback's frames (file, line, function, source line), without the message."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "".join(traceback.format_list(frames)).rstrip()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ServiceError, _service_handler)
    app.add_exception_handler(PoolTimeoutError, _pool_timeout_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
