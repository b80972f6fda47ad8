"""Logs: request ids, JSON or plain lines, secrets and texts redacted from records."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from app.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"

request_id_var: ContextVar[str | None] = ContextVar("verbcal_request_id", default=None)

# --------------------------------------------------------------------------------- request ids

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it can be echoed and logged safely (≤ 100 chars of ``[A-Za-z0-9._-]``)."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return os.urandom(16).hex()


# ------------------------------------------------------------------------------------- logging

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "request_id", "request_tag", "color_message"}

SECRET_FIELDS = frozenset(
    {"authorization", "api_key", "apikey", "key", "secret", "token", "password", "cookie"}
)
TEXT_FIELDS = frozenset(
    {"prompt", "prompts", "text", "texts", "messages", "raw_text", "answer", "label", "labels"}
)
REDACTED = "[redacted]"

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"\bvc_[A-Za-z0-9_-]{8,}"),
)


def scrub(message: str) -> str:
    """Mask bearer tokens and verbcal API keys that ended up in a log message."""
    if "earer" not in message and "vc_" not in message:
        return message
    message = _SECRET_PATTERNS[0].sub(r"\1" + REDACTED, message)
    return _SECRET_PATTERNS[1].sub(REDACTED, message)


_KEEP, _SECRET, _TEXT = 0, 1, 2


@lru_cache(maxsize=1024)
def _field_kind(name: str) -> int:
    lowered = name.lower()
    if lowered in SECRET_FIELDS or lowered.endswith(("_key", "_secret", "_token", "password")):
        return _SECRET
    return _TEXT if lowered in TEXT_FIELDS else _KEEP


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, with secrets and (above DEBUG) texts redacted."""
    extras: dict[str, Any] = {}
    for name, value in vars(record).items():
        if name in _RECORD_ATTRIBUTES or name.startswith("_"):
            continue
        kind = _field_kind(name)
        if kind == _SECRET or (kind == _TEXT and record.levelno > logging.DEBUG):
            value = REDACTED
        extras[name] = value
    return extras


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record as ``record.request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values JSON cannot hold are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for name, value in record_extras(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exc_info"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Human-readable lines: time, level, logger, [request id], message, then extra fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.request_tag = f" [{request_id}]" if request_id else ""
        extras = record_extras(record)
        line = scrub(super().format(record))
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(settings: Settings, stream=None) -> logging.Handler:
    """Install verbcal's handler on the root logger, replacing one installed earlier.

    Idempotent: tests and ``verbcal serve`` may call it several times. Handlers that others
    installed (pytest's, for one) are left alone.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_verbcal", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._verbcal = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_json else PlainFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # uvicorn's own access log would duplicate ours and log query strings.
    logging.getLogger("uvicorn.access").disabled = True
    return handler
