"""Prometheus metrics of one app: HTTP, LLM and calibrate counters, job gauges from the DB."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from prometheus_client import (
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

from app.models import ACTIVE_JOB_STATUSES, JOB_STATUSES, Job

logger = logging.getLogger(__name__)


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
