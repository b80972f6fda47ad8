"""Logging, request ids and Prometheus metrics of the service.

``install_observability(app, settings)`` (called by ``create_app``) sets up:

- Logging on the root logger: one JSON object per line (``ts``, ``level``, ``logger``,
  ``message``, ``request_id`` and any ``extra={...}`` fields) or, with ``VERBCAL_LOG_JSON=false``,
  plain text. Extra fields named like secrets (``authorization``, ``api_key``, ``token``, ...)
  are always redacted; fields carrying prompts, texts or labels (``prompt``, ``text``,
  ``messages``, ``raw_text``, ...) are kept only in DEBUG records. Bearer tokens and verbcal keys
  found in messages are masked too.
- A pure ASGI middleware that gives every request an id (a sane incoming ``X-Request-ID`` is
  kept, else a new one is made), echoes it in the ``X-Request-ID`` response header, makes it
  available to log records (``request_id_var``), writes one access log line per request
  (logger ``verbcal.access``) and counts the request in Prometheus metrics.
- ``app.state.metrics``: a :class:`Metrics` with a per-app ``CollectorRegistry``, exposed by
  ``GET /metrics``.

Recording metrics from code. In a route::

    from app.observability import get_metrics

    get_metrics(request).record_calibrate(task_name, "ok")

or take ``request.app.state.metrics`` directly. Services that have no request receive the
``Metrics`` object (or its bound method) from their caller; ``Metrics.record_llm_call(outcome,
seconds)`` is meant to be passed as a callback to the LLM client. Outcome values are short and
fixed (``ok``, ``parse_failed``, ``error``, ``timeout``, ``rate_limited`` for LLM calls; ``ok``,
``invalid``, ``llm_error`` for calibrations) so label cardinality stays bounded. Job gauges are
not recorded: they are read from the ``jobs`` table at scrape time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select
from starlette.routing import Mount

from app.config import Settings
from app.models import ACTIVE_JOB_STATUSES, JOB_STATUSES, Job

__all__ = [
    "CONTENT_TYPE_LATEST",
    "REQUEST_ID_HEADER",
    "JobsCollector",
    "JsonFormatter",
    "Metrics",
    "RequestContextMiddleware",
    "configure_logging",
    "create_metrics",
    "get_metrics",
    "install_observability",
    "request_id_var",
]

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "unmatched"

request_id_var: ContextVar[str | None] = ContextVar("verbcal_request_id", default=None)

access_logger = logging.getLogger("verbcal.access")
logger = logging.getLogger(__name__)

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


# ------------------------------------------------------------------------------------- metrics


class JobsCollector(Collector):
    """``verbcal_jobs{status}`` and ``verbcal_job_items{state}`` read from the jobs table.

    ``verbcal_job_items`` sums ``done``, ``failed`` and ``total`` over active (queued or
    running) jobs: the progress of the work in flight. ``verbcal_jobs_scrape_ok`` is 0 when the
    database could not be read (the job gauges are then absent rather than wrong).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self._read()
        except Exception:
            logger.warning("could not read job metrics from the database", exc_info=True)
            rows = None
        yield from self._families(rows)

    def _read(self) -> list[tuple[str, int, int, int, int]]:
        active = Job.status.in_(ACTIVE_JOB_STATUSES)
        query = select(
            Job.status,
            func.count(),
            func.coalesce(func.sum(case((active, Job.done), else_=0)), 0),
            func.coalesce(func.sum(case((active, Job.failed), else_=0)), 0),
            func.coalesce(func.sum(case((active, Job.total), else_=0)), 0),
        ).group_by(Job.status)
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def _families(self, rows) -> Iterator[Metric]:
        scrape_ok = GaugeMetricFamily(
            "verbcal_jobs_scrape_ok", "1 when the job gauges could be read from the database."
        )
        jobs = GaugeMetricFamily("verbcal_jobs", "Jobs by status.", labels=["status"])
        items = GaugeMetricFamily(
            "verbcal_job_items",
            "Items of active (queued or running) jobs: done, failed and total.",
            labels=["state"],
        )
        if rows is not None:
            counts = dict.fromkeys(JOB_STATUSES, 0)
            done = failed = total = 0
            for status, count, status_done, status_failed, status_total in rows:
                counts[status] = counts.get(status, 0) + int(count)
                done += int(status_done)
                failed += int(status_failed)
                total += int(status_total)
            for status, count in counts.items():
                jobs.add_metric([status], count)
            for state, value in (("done", done), ("failed", failed), ("total", total)):
                items.add_metric([state], value)
        scrape_ok.add_metric([], 0 if rows is None else 1)
        yield scrape_ok
        yield jobs
        yield items


# Request latencies of a calibration API: mostly milliseconds, seconds when the LLM is asked.
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0)


@dataclass
class Metrics:
    """The metric objects of one app, on their own registry (tests build many apps)."""

    registry: CollectorRegistry
    http_requests: Counter
    http_request_duration: Histogram
    llm_calls: Counter
    llm_call_duration: Histogram
    calibrate_requests: Counter
    # Label children cached by label values: ``.labels()`` takes a lock and validates each call.
    _http_children: dict[tuple[str, str, str], tuple[Any, Any]] = field(
        default_factory=dict, repr=False
    )

    def record_http(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._http_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(method, route, key[2]),
                self.http_request_duration.labels(method, route),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_llm_call(self, outcome: str, seconds: float) -> None:
        """One call to an LLM endpoint (one sample), whatever its result."""
        self.llm_calls.labels(outcome).inc()
        self.llm_call_duration.observe(seconds)

    def record_calibrate(self, task: str, outcome: str) -> None:
        """One ``/calibrate`` item (a batch counts each item)."""
        self.calibrate_requests.labels(task, outcome).inc()

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric of this registry."""
        return generate_latest(self.registry)


def create_metrics(engine: Engine | None = None, *, process_metrics: bool = True) -> Metrics:
    """Build the metrics on a fresh registry; with ``engine``, job gauges read from its DB."""
    registry = CollectorRegistry()
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    if engine is not None:
        registry.register(JobsCollector(engine))
    return Metrics(
        registry=registry,
        http_requests=Counter(
            "verbcal_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        ),
        http_request_duration=Histogram(
            "verbcal_http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        ),
        llm_calls=Counter(
            "verbcal_llm_calls_total", "LLM calls by outcome.", ["outcome"], registry=registry
        ),
        llm_call_duration=Histogram(
            "verbcal_llm_call_duration_seconds",
            "LLM call duration.",
            buckets=LLM_BUCKETS,
            registry=registry,
        ),
        calibrate_requests=Counter(
            "verbcal_calibrate_requests_total",
            "Calibrate requests (items) by task and outcome.",
            ["task", "outcome"],
            registry=registry,
        ),
    )


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


# ---------------------------------------------------------------------------------- middleware

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


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logging, the request-context middleware and ``app.state.metrics`` (see the module doc)."""
    configure_logging(settings)
    metrics = create_metrics(getattr(app.state, "engine", None))
    app.state.metrics = metrics
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
