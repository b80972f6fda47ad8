"""Calibration on labelled traffic: /calibrate results that received feedback."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import CalibrationRequest, Task
from app.schemas.monitoring import FitTimeMetrics, LiveMetrics, TaskMonitoring
from app.services.prior import monitoring_prior
from app.services.served import active_served_calibration
from app.services.tasks import active_calibration
from calibrators import accuracy, brier_score, expected_calibration_error, log_loss

MIN_FEEDBACK_FOR_DRIFT = 30


def _metrics(P: np.ndarray, y: np.ndarray) -> LiveMetrics:
    return LiveMetrics(
        ece=float(expected_calibration_error(P, y)),
        nll=float(log_loss(P, y)),
        brier=float(brier_score(P, y)),
        accuracy=float(accuracy(P, y)),
    )


def task_monitoring(
    session: Session, task: Task, settings: Settings, window: int | None = None
) -> TaskMonitoring:
    """Metrics over the most recent ``window`` labelled requests, next to fit-time metrics.

    Drift is flagged when the live calibrated ECE exceeds the active calibration's held-out
    ECE by more than ``settings.drift_ece_margin``; it is null (with a reason) below
    MIN_FEEDBACK_FOR_DRIFT labelled requests.
    """
    window = window or settings.monitoring_window
    labelled = (
        select(CalibrationRequest)
        .where(
            CalibrationRequest.task_id == task.id, CalibrationRequest.feedback_label.is_not(None)
        )
        .order_by(CalibrationRequest.feedback_at.desc())
        .limit(window)
    )
    rows = list(session.scalars(labelled))
    total_requests = session.scalar(
        select(func.count())
        .select_from(CalibrationRequest)
        .where(CalibrationRequest.task_id == task.id)
    )
    active = active_calibration(session, task)
    fit_time = None
    if active is not None:
        after = active.metrics.get("after", {})
        fit_time = FitTimeMetrics(
            calibration_id=active.id,
            version=active.version,
            ece=after.get("ece"),
            nll=after.get("nll"),
            brier=after.get("brier"),
            accuracy=after.get("accuracy"),
        )
    result = TaskMonitoring(
        task=task.name,
        window=window,
        requests_total=total_requests,
        labelled=len(rows),
        live=None,
        live_raw=None,
        fit_time=fit_time,
        drift=None,
        drift_reason=None,
        drift_margin=settings.drift_ece_margin,
        by_calibration={},
        prior=monitoring_prior(session, task, active_served_calibration(session, task), settings),
    )
    if not rows:
        result.drift_reason = "no feedback yet"
        return result
    index = {label: i for i, label in enumerate(task.labels)}
    y = np.array([index[r.feedback_label] for r in rows], dtype=np.int64)
    P = np.array([r.probabilities for r in rows], dtype=np.float64)
    P_raw = np.array([r.raw_probabilities for r in rows], dtype=np.float64)
    live = result.live = _metrics(P, y)
    result.live_raw = _metrics(P_raw, y)
    counts: dict[str, int] = {}
    for r in rows:
        key = "none" if r.calibration_id is None else str(r.calibration_id)
        counts[key] = counts.get(key, 0) + 1
    result.by_calibration = counts
    if fit_time is None or fit_time.ece is None:
        result.drift_reason = "no active calibration to compare with"
    elif len(rows) < MIN_FEEDBACK_FOR_DRIFT:
        result.drift_reason = (
            f"{len(rows)} labelled requests; at least {MIN_FEEDBACK_FOR_DRIFT} needed"
        )
    else:
        gap = live.ece - fit_time.ece
        result.drift = bool(gap > settings.drift_ece_margin)
        result.drift_reason = (
            f"live ECE {live.ece:.4f} vs fit-time {fit_time.ece:.4f} "
            f"(margin {settings.drift_ece_margin})"
        )
    return result
