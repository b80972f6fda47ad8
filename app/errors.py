"""Domain errors raised by services and turned into the standard error body by the API.

Every error answer is ``{"error": {"code": str, "message": str, "details": ...}}``.
"""

from __future__ import annotations

from typing import Any

from app.llm.errors import LLMError


class ServiceError(Exception):
    """Base class: an HTTP status, a stable machine-readable code and a human message."""

    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"


class TaskNotReadyError(ConflictError):
    """A well-formed request the task's current state does not allow: it has no LLM config to
    ask, or its labelled data cannot support the fit or report asked (too few rows for the
    split or folds, stored rows no calibrator accepts). 409: change the task (set `llm`,
    import data, elicit) and send the same request again."""

    code = "task_not_ready"


class InvalidInputError(ServiceError):
    """Input that is well-formed JSON but wrong for the task (unknown label, bad row, ...)."""

    status_code = 422
    code = "validation_error"


class AuthenticationError(ServiceError):
    status_code = 401
    code = "unauthenticated"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 (never mutated)


class PermissionDeniedError(ServiceError):
    status_code = 403
    code = "forbidden"


class OverloadedError(ServiceError):
    """The server is at capacity; the answer carries ``Retry-After``."""

    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, details: Any = None, *, retry_after_s: int = 1) -> None:
        super().__init__(message, details)
        self.headers = {"Retry-After": str(retry_after_s)}


class UpstreamLLMError(ServiceError):
    """The task's LLM failed: ``llm_timeout`` (504) for a timeout; ``unsupported_structured_output``
    (502) when the server rejects the structured-output mode; ``llm_error`` (502) otherwise.

    ``details`` is the typed LLM error (kind, status code, message, excerpt of the answer).
    """

    status_code = 502
    code = "llm_error"

    def __init__(self, error: LLMError) -> None:
        super().__init__(f"LLM {error.kind}: {error.message}", error.to_dict())
        self.llm_error = error
        if error.kind == "timeout":
            self.status_code = 504
            self.code = "llm_timeout"
        elif error.kind == "unsupported_structured_output":
            self.code = error.kind


def field_error(
    field: str, message: str, row: int | None = None, *, example: str | None = None
) -> dict[str, Any]:
    """One entry of ``details`` naming the offending field (and row, for batch input, or
    example, for stored data)."""
    entry: dict[str, Any] = {"field": field, "message": message}
    if row is not None:
        entry["row"] = row
    if example is not None:
        entry["example"] = example
    return entry
