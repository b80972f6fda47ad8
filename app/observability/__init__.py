"""Logging, request ids and Prometheus metrics of the service.

One module per concern: ``logs`` (request ids, redaction, formatters), ``metrics`` (the
Prometheus registry of an app) and ``middleware`` (the per-request context).

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

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST

from app.config import Settings
from app.observability.logs import (
    REQUEST_ID_HEADER,
    JsonFormatter,
    RequestIdFilter,
    configure_logging,
    request_id_var,
    sane_request_id,
)
from app.observability.metrics import JobsCollector, Metrics, create_metrics, get_metrics
from app.observability.middleware import RequestContextMiddleware

__all__ = [
    "CONTENT_TYPE_LATEST",
    "REQUEST_ID_HEADER",
    "JobsCollector",
    "JsonFormatter",
    "Metrics",
    "RequestContextMiddleware",
    "RequestIdFilter",
    "configure_logging",
    "create_metrics",
    "get_metrics",
    "install_observability",
    "request_id_var",
    "sane_request_id",
]


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Logging, the request-context middleware and ``app.state.metrics`` (see the module doc)."""
    configure_logging(settings)
    metrics = create_metrics(getattr(app.state, "engine", None))
    app.state.metrics = metrics
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
