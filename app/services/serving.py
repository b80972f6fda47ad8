"""Serving calibrated probabilities (`POST /calibrate`), batches, and feedback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session, load_only

from app.config import Settings
from app.db import DbRunner
from app.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceError,
    field_error,
)
from app.models import CalibrationRequest, Task, new_uuid, utcnow
from app.schemas.calibrate import (
    BatchItemError,
    BatchItemResult,
    CalibrateBatchRequest,
    CalibrateBatchResponse,
    CalibrateItem,
    CalibrateRequest,
    CalibrateResponse,
    CalibrationRef,
    FeedbackRequest,
    FeedbackResponse,
)
from app.services import conformal as conformal_service
from app.services import prior as prior_service
from app.services.item_elicitation import (
    Elicited,
    elicit_batch,
    elicit_item,
    from_probabilities,
)
from app.services.served import ServedCalibration, active_served_calibration, decide
from app.services.tasks import get_task

if TYPE_CHECKING:
    from app.observability import Metrics


def _respond(
    session: Session,
    task: Task,
    elicited: Elicited,
    served: ServedCalibration | None,
    target_precision: float | None,
    coverage: float | None = None,
    settings: Settings | None = None,
) -> CalibrateResponse:
    labels = list(task.labels)
    # Normalized at the edge: by validate_distribution, or by the parser for each LLM sample.
    raw = np.asarray(elicited.raw, dtype=np.float64)
    calibrated = raw if served is None else served.calibrator.transform(raw[None, :])[0]
    calibrated, prior_shift = prior_service.apply_prior(session, task, served, calibrated, settings)
    prediction_set = (
        None
        if coverage is None
        else conformal_service.prediction_set(
            served and served.conformal, calibrated, coverage, labels
        )
    )
    top = int(np.argmax(calibrated))
    label, confidence = labels[top], float(calibrated[top])
    decision = decide(label, confidence, served, target_precision)
    # The id is set here rather than by a flush: the INSERT then happens at commit, so a
    # request holds the database's write lock only for the commit.
    row = CalibrationRequest(
        id=new_uuid(),
        task_id=task.id,
        calibration_id=None if served is None else served.id,
        text_hash=elicited.text_hash,
        raw_probabilities=raw.tolist(),
        probabilities=calibrated.tolist(),
        label=label,
        confidence=confidence,
        decision=decision.model_dump(),
        llm=None if elicited.llm is None else elicited.llm.model_dump(),
    )
    session.add(row)
    return CalibrateResponse(
        id=row.id,
        task=task.name,
        label=label,
        confidence=confidence,
        probabilities=dict(zip(labels, calibrated.tolist(), strict=True)),
        raw_probabilities=dict(zip(labels, raw.tolist(), strict=True)),
        calibration=None
        if served is None
        else CalibrationRef(id=served.id, version=served.version, temperature=served.temperature),
        decision=decision,
        llm=elicited.llm,
        prediction_set=prediction_set,
        prior_shift=prior_shift,
    )


def _calibrate_given(
    session: Session, task_name: str, item: CalibrateItem, settings: Settings
) -> CalibrateResponse:
    """Calibrate a distribution given in the request: all database work in one call."""
    task = get_task(session, task_name)
    elicited = Elicited(from_probabilities(task, item.probabilities, None), None, None)
    return _respond_active(session, task, elicited, item.target_precision, item.coverage, settings)


def _respond_active(
    session: Session,
    task: Task,
    elicited: Elicited,
    target_precision: float | None,
    coverage: float | None,
    settings: Settings,
) -> CalibrateResponse:
    """Apply the active calibration to one elicited distribution and store the result."""
    served = active_served_calibration(session, task)
    return _respond(session, task, elicited, served, target_precision, coverage, settings)


def _respond_batch(
    session: Session,
    task: Task,
    items: Sequence[CalibrateItem],
    outcomes: Sequence[Elicited | ServiceError],
    settings: Settings | None = None,
) -> CalibrateBatchResponse:
    """Per-item results and errors; one failing item does not fail the batch."""
    served = active_served_calibration(session, task)
    results = []
    for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        if not isinstance(outcome, ServiceError):
            try:
                outcome = _respond(
                    session, task, outcome, served, item.target_precision, item.coverage, settings
                )
            except ServiceError as exc:  # e.g. a coverage not stored: this item only
                outcome = exc
        if isinstance(outcome, ServiceError):
            error = BatchItemError(
                code=outcome.code, message=outcome.message, details=outcome.details
            )
            results.append(BatchItemResult(index=index, error=error))
        else:
            results.append(BatchItemResult(index=index, result=outcome))
    failed = sum(r.error is not None for r in results)
    return CalibrateBatchResponse(
        task=task.name, results=results, succeeded=len(results) - failed, failed=failed
    )


async def calibrate(
    run_db: DbRunner,
    session: Session,
    request: CalibrateRequest,
    settings: Settings,
    metrics: Metrics | None = None,
) -> CalibrateResponse:
    """``POST /calibrate``: the calibrated distribution of a text (the task's LLM is asked) or
    of given probabilities, stored as a calibration request.

    Database work goes through ``run_db`` (in one call when no LLM is involved); the LLM call
    is awaited on the event loop. Each outcome is counted in ``metrics`` by error code, except
    an unknown task (its name is not a metric label).
    """
    record_llm_call = None if metrics is None else metrics.record_llm_call
    try:
        if request.probabilities is not None:
            result = await run_db(_calibrate_given, session, request.task, request, settings)
        else:
            task = await run_db(get_task, session, request.task)
            elicited = await elicit_item(task, request, settings, record_llm_call)
            result = await run_db(
                _respond_active,
                session,
                task,
                elicited,
                request.target_precision,
                request.coverage,
                settings,
            )
    except NotFoundError:
        raise
    except ServiceError as exc:
        if metrics is not None:
            metrics.record_calibrate(request.task, exc.code)
        raise
    if metrics is not None:
        metrics.record_calibrate(request.task, "ok")
    return result


async def calibrate_batch(
    run_db: DbRunner,
    session: Session,
    request: CalibrateBatchRequest,
    settings: Settings,
    metrics: Metrics | None = None,
) -> CalibrateBatchResponse:
    """``POST /calibrate/batch``: per-item results and errors; texts go to the LLM
    concurrently and one failing item does not fail the batch."""
    task = await run_db(get_task, session, request.task)
    record_llm_call = None if metrics is None else metrics.record_llm_call
    outcomes = await elicit_batch(task, request.items, settings, record_llm_call)
    result = await run_db(_respond_batch, session, task, request.items, outcomes, settings)
    if metrics is not None:
        for item in result.results:
            metrics.record_calibrate(task.name, "ok" if item.error is None else item.error.code)
    return result


def record_feedback(session: Session, request: FeedbackRequest) -> FeedbackResponse:
    """Attach the true label to a past /calibrate result (a later call replaces it)."""
    row = session.get(
        CalibrationRequest,
        request.id,
        options=[
            load_only(CalibrationRequest.id, CalibrationRequest.task_id, CalibrationRequest.label)
        ],
    )
    if row is None:
        raise NotFoundError(f"no /calibrate result with id {request.id!r}")
    task = session.get(Task, row.task_id)
    if request.label not in task.labels:
        raise InvalidInputError(
            f"unknown label {request.label!r}; task labels are {task.labels}",
            [field_error("label", f"not one of {task.labels}")],
        )
    row.feedback_label = request.label
    row.feedback_at = utcnow()
    session.flush()
    return FeedbackResponse(
        id=row.id,
        task=task.name,
        label=request.label,
        predicted=row.label,
        correct=row.label == request.label,
    )
