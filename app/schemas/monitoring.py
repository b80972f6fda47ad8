"""GET /tasks/{name}/monitoring: calibration on labelled traffic next to fit-time metrics."""

from __future__ import annotations

from pydantic import BaseModel

from app.schemas.extras import PriorMonitoring


class LiveMetrics(BaseModel):
    """Metrics of /calibrate results that received feedback."""

    ece: float
    nll: float
    brier: float
    accuracy: float


class FitTimeMetrics(BaseModel):
    """The active calibration's held-out metrics, stored at fit time."""

    calibration_id: int
    version: int
    ece: float | None
    nll: float | None
    brier: float | None
    accuracy: float | None


class TaskMonitoring(BaseModel):
    task: str
    window: int
    requests_total: int
    labelled: int
    live: LiveMetrics | None
    live_raw: LiveMetrics | None
    fit_time: FitTimeMetrics | None
    drift: bool | None
    drift_reason: str | None
    drift_margin: float
    by_calibration: dict[str, int]
    prior: PriorMonitoring | None = None
