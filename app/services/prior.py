"""Prior shift: correcting served probabilities to a task's target class prior.

A task's ``prior`` is ``None`` (no correction), a given prior ``{label: share}``, or
``"estimate"``: the live prior is estimated by EM (Saerens, Latinne & Decaestecker 2002;
``calibrators.prior_shift``) from the most recent ``VERBCAL_PRIOR_WINDOW`` ``/calibrate``
requests of the task, their raw distributions passed through the active calibrator (so the EM
sees calibrated, uncorrected probabilities whatever prior served them). The training prior is
the class frequencies of the labelled rows the active calibration was fitted with, stored at
fit time as ``Calibration.data["class_prior"]``. The correction is
``q'_k ∝ (π'_k / π_k) q_k`` (``calibrators.adjust_to_prior``).

Estimates are cached per (task, calibration) for ``VERBCAL_PRIOR_REFRESH_S`` seconds, so a busy
task runs EM at most once per interval; an estimate needs ``VERBCAL_PRIOR_MIN_REQUESTS`` requests
(until then nothing is cached, so the estimate starts with the request that reaches the count).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.errors import InvalidInputError, field_error
from app.models import CalibrationRequest, Task
from app.schemas.extras import PriorMonitoring, PriorShiftInfo
from calibrators import adjust_to_prior, check_prior, class_frequencies, estimate_target_prior

ESTIMATE = "estimate"


def training_prior(y: np.ndarray, n_classes: int) -> list[float] | None:
    """Class frequencies of the labelled rows, or ``None`` when a class has none (prior 0)."""
    try:
        return class_frequencies(y, n_classes).tolist()
    except ValueError:
        return None


def validate_prior(labels: list[str], prior: Any) -> Any:
    """A task's ``prior`` setting, normalized: None, "estimate", or {label: share} (sum 1).

    Raises InvalidInputError naming ``prior`` when a given prior does not name every label
    exactly once with a share > 0, or does not sum to 1.
    """
    if prior is None or prior == ESTIMATE:
        return prior
    if set(prior) != set(labels):
        missing = [label for label in labels if label not in prior]
        unknown = [label for label in prior if label not in labels]
        message = f"the prior must give a share for every task label; missing {missing}"
        if unknown:
            message += f", unknown {unknown}"
        raise InvalidInputError(message, [field_error("prior", message)])
    try:
        values = check_prior([prior[label] for label in labels], len(labels), "prior")
    except ValueError as exc:
        raise InvalidInputError(str(exc), [field_error("prior", str(exc))]) from exc
    return dict(zip(labels, values.tolist(), strict=True))


class EstimateCache:
    """The latest EM estimate per (task id, task creation time, calibration id), with its time.

    The creation time tells apart tasks that reuse a deleted task's id (a calibration id is
    only reused once its task is deleted).
    """

    def __init__(self) -> None:
        self._items: dict[tuple, tuple[float, dict[str, Any] | None, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, max_age: float):
        with self._lock:
            item = self._items.get(key)
        if item is None or time.monotonic() - item[0] >= max_age:
            return None
        return item[1], item[2]

    def put(self, key: tuple, estimate: dict[str, Any] | None, n: int) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), estimate, n)


ESTIMATE_CACHE = EstimateCache()


def recent_raw_probabilities(session: Session, task: Task, window: int) -> np.ndarray:
    """Raw distributions of the task's ``window`` most recent /calibrate requests (n, K)."""
    # No autoflush: results of the current request (or batch) are not yet traffic, and
    # flushing them here would take the database's write lock early.
    with session.no_autoflush:
        rows = session.scalars(
            select(CalibrationRequest.raw_probabilities)
            .where(CalibrationRequest.task_id == task.id)
            .order_by(CalibrationRequest.created_at.desc())
            .limit(window)
        ).all()
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(task.labels))


def estimate_live_prior(
    session: Session, task: Task, calibrator: Any, source_prior: list[float], settings: Settings
) -> tuple[dict[str, Any] | None, int]:
    """EM estimate of the live prior from recent traffic, and how many requests it used.

    ``None`` (with the count) below ``settings.prior_min_requests`` requests.
    """
    raw = recent_raw_probabilities(session, task, settings.prior_window)
    if raw.shape[0] < settings.prior_min_requests:
        return None, raw.shape[0]
    calibrated = calibrator.transform(raw / raw.sum(axis=1, keepdims=True))
    return estimate_target_prior(calibrated, source_prior), raw.shape[0]


def _cached_estimate(session, task, served, settings) -> tuple[dict[str, Any] | None, int]:
    key = (task.id, task.created_at, served.id)
    cached = ESTIMATE_CACHE.get(key, settings.prior_refresh_s)
    if cached is not None:
        return cached
    estimate, n = estimate_live_prior(
        session, task, served.calibrator, served.class_prior, settings
    )
    # Too few requests is not cached: the next request may bring the count up (and reading
    # fewer than VERBCAL_PRIOR_MIN_REQUESTS rows is cheap).
    if estimate is not None:
        ESTIMATE_CACHE.put(key, estimate, n)
    return estimate, n


def _named(labels: list[str], values) -> dict[str, float]:
    return dict(zip(labels, [float(v) for v in values], strict=True))


def apply_prior(
    session: Session,
    task: Task,
    served: Any,
    calibrated: np.ndarray,
    settings: Settings | None = None,
) -> tuple[np.ndarray, PriorShiftInfo | None]:
    """``calibrated`` corrected to the task's target prior, and the ``prior_shift`` block.

    Without a task prior: unchanged and ``None``. ``served`` is the active calibration as
    served (``id``, ``calibrator``, ``class_prior``) or ``None``.
    """
    setting = task.prior
    if setting is None:
        return calibrated, None
    settings = settings or get_settings()
    labels = list(task.labels)
    mode = "estimate" if setting == ESTIMATE else "given"
    source = None if served is None else served.class_prior
    info = PriorShiftInfo(
        mode=mode,
        applied=False,
        prior=None,
        training_prior=None if source is None else _named(labels, source),
    )
    if served is None:
        info.reason = "no active calibration: the training prior comes from a fitted calibration"
        return calibrated, info
    if source is None:
        info.reason = "the active calibration stores no training prior (a class had no rows)"
        return calibrated, info
    if mode == "given":
        target = [setting[label] for label in labels]
    else:
        estimate, n = _cached_estimate(session, task, served, settings)
        info.n = n
        if estimate is None:
            info.reason = (
                f"{n} recent requests; the estimate needs at least {settings.prior_min_requests}"
            )
            return calibrated, info
        target = estimate["prior"]
    corrected = adjust_to_prior(calibrated[None, :], source, target)[0]
    info.applied = True
    info.prior = _named(labels, target)
    return corrected, info


def monitoring_prior(
    session: Session, task: Task, served: Any, settings: Settings
) -> PriorMonitoring:
    """The training prior, the task's prior setting and the live EM estimate (for monitoring)."""
    labels = list(task.labels)
    result: dict[str, Any] = {
        "setting": task.prior,
        "training_prior": None,
        "live_prior": None,
        "standard_error": None,
        "n": None,
        "window": settings.prior_window,
        "reason": None,
    }
    if served is None or served.class_prior is None:
        result["reason"] = "no active calibration with a training prior"
        return PriorMonitoring(**result)
    result["training_prior"] = _named(labels, served.class_prior)
    estimate, n = estimate_live_prior(
        session, task, served.calibrator, served.class_prior, settings
    )
    result["n"] = n
    if estimate is None:
        result["reason"] = (
            f"{n} recent requests; the estimate needs at least {settings.prior_min_requests}"
        )
        return PriorMonitoring(**result)
    result["live_prior"] = _named(labels, estimate["prior"])
    if estimate["standard_error"] is not None:
        result["standard_error"] = _named(labels, estimate["standard_error"])
    result["converged"] = estimate["converged"]
    result["note"] = estimate["note"]
    return PriorMonitoring(**result)
