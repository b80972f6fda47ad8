"""Serving calibrated probabilities (`POST /calibrate`), batches, and feedback."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from app.config import Settings
from app.db import DbRunner
from app.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceError,
    UpstreamLLMError,
    field_error,
)
from app.llm.client import LLMClient
from app.llm.errors import LLMError
from app.models import Calibration, CalibrationRequest, Task, new_uuid, utcnow
from app.schemas.calibrate import (
    BatchItemError,
    BatchItemResult,
    CalibrateBatchRequest,
    CalibrateBatchResponse,
    CalibrateItem,
    CalibrateRequest,
    CalibrateResponse,
    CalibrationRef,
    Decision,
    FeedbackRequest,
    FeedbackResponse,
    LLMInfo,
)
from app.services import conformal as conformal_service
from app.services import prior as prior_service
from app.services.examples import text_hash
from app.services.predictions import validate_distribution
from app.services.tasks import get_task, task_llm_config, task_template
from app.services.uploads import RowErrors
from calibrators import calibrator_from_dict
from calibrators.thresholds import threshold_for_precision

if TYPE_CHECKING:
    from app.observability import Metrics

_CACHE_SIZE = 256


@dataclass(frozen=True)
class ServedCalibration:
    """What serving needs of an active calibration; immutable, so cached by id."""

    id: int
    version: int
    temperature: float | None
    calibrator: Any
    decision_curves: dict[str, Any]
    conformal: Any = None
    class_prior: list[float] | None = None


class _CalibrationCache:
    """LRU of fitted calibrators (a stored calibration never changes).

    Keyed by (id, created_at): a database may reuse the id of a deleted row.
    """

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple[int, datetime], ServedCalibration] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, session: Session, key: tuple[int, datetime]) -> ServedCalibration:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        row = session.get(Calibration, key[0])
        served = ServedCalibration(
            id=row.id,
            version=row.version,
            temperature=row.temperature,
            calibrator=calibrator_from_dict(row.calibrator),
            decision_curves=row.data.get("decision_curves", {}),
            conformal=conformal_service.load_conformal(row.data),
            class_prior=row.data.get("class_prior"),
        )
        with self._lock:
            self._items[key] = served
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return served


CALIBRATION_CACHE = _CalibrationCache()


def active_served_calibration(session: Session, task: Task) -> ServedCalibration | None:
    key = session.execute(
        select(Calibration.id, Calibration.created_at).where(
            Calibration.task_id == task.id, Calibration.is_active
        )
    ).first()
    return None if key is None else CALIBRATION_CACHE.get(session, tuple(key))


def decide(
    label: str,
    score: float,
    served: ServedCalibration | None,
    target_precision: float | None,
) -> Decision:
    if target_precision is None:
        return Decision(label=label, abstained=False, threshold=None)
    if served is None:
        return Decision(
            label=None,
            abstained=True,
            threshold=None,
            target_precision=target_precision,
            reason="no active calibration: thresholds come from a fitted calibration",
        )
    threshold = threshold_for_precision(served.decision_curves.get(label, {}), target_precision)
    if threshold is None:
        return Decision(
            label=None,
            abstained=True,
            threshold=None,
            target_precision=target_precision,
            reason=f"no threshold reaches precision {target_precision} for {label!r} "
            "on held-out data",
        )
    accepted = score >= threshold
    return Decision(
        label=label if accepted else None,
        abstained=not accepted,
        threshold=threshold,
        target_precision=target_precision,
        reason=None if accepted else f"confidence below the threshold for {label!r}",
    )


@dataclass
class Elicited:
    raw: list[float]
    llm: LLMInfo | None
    text_hash: str | None


def _from_probabilities(
    task: Task, probabilities: dict[str, float], row: int | None
) -> list[float]:
    errors = RowErrors("item")
    distribution = validate_distribution(probabilities, list(task.labels), errors, row or 0)
    if distribution is None:
        details = errors.errors
        if row is None:
            for entry in details:
                entry.pop("row", None)
        raise InvalidInputError(f"probabilities: {details[0]['message']}", details)
    return distribution


def _check_text(text: str, settings: Settings) -> None:
    if len(text) > settings.max_text_length:
        raise InvalidInputError(
            f"text longer than {settings.max_text_length} characters",
            [field_error("text", f"at most {settings.max_text_length} characters")],
        )


def _llm_client(task: Task, settings: Settings) -> LLMClient:
    config = task_llm_config(task)
    if config is None:
        raise InvalidInputError(
            f"task {task.name!r} has no LLM configured; send `probabilities` instead of `text`",
            [field_error("text", "the task has no llm config")],
        )
    return LLMClient(config, task_template(task), endpoint_policy=settings.llm_policy)


LLMCallRecorder = Callable[[str, float], None]
_LLM_OUTCOMES = {
    "timeout": "timeout",
    "rate_limited": "rate_limited",
    "unparseable": "parse_failed",
}


def _record_llm_calls(elicitation, record: LLMCallRecorder | None) -> None:
    if record is None:
        return
    for sample in elicitation.samples:
        if sample.probabilities is not None:
            outcome = "ok"
        else:
            kind = sample.error.kind if sample.error is not None else "unparseable"
            outcome = _LLM_OUTCOMES.get(kind, "error")
        record(outcome, (sample.latency_ms or 0.0) / 1000)


def _elicited_result(
    elicitation, text: str, settings: Settings, record: LLMCallRecorder | None = None
) -> Elicited:
    """The LLM's distribution for ``text``, or the typed failure as a 502/504 error."""
    _record_llm_calls(elicitation, record)
    if elicitation.probabilities is None:
        raise UpstreamLLMError(
            elicitation.error or LLMError("unparseable", "the LLM gave no usable distribution")
        )
    samples = elicitation.samples
    parsed = [s for s in samples if s.probabilities is not None]
    repairs = sorted({r for s in parsed for r in (s.repairs or [])})
    reasoning = elicitation.reasoning
    return Elicited(
        raw=list(elicitation.probabilities),
        llm=LLMInfo(
            model=samples[0].model if samples else None,
            latency_ms=elicitation.latency_ms,
            parse_status=elicitation.status,
            samples=len(samples),
            repairs=repairs,
            reasoning=None if reasoning is None else reasoning[: settings.reasoning_max_chars],
            answer_agrees=elicitation.answer_agrees,
        ),
        text_hash=text_hash(text),
    )


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


async def _elicit_item(
    task: Task,
    item: CalibrateItem,
    settings: Settings,
    record_llm_call: LLMCallRecorder | None = None,
    row: int | None = None,
) -> Elicited:
    """The raw distribution of an item: validated probabilities, or the LLM's answer.

    No database access, so it runs on the event loop; the LLM call is awaited, not blocking
    a thread for its latency.
    """
    if item.probabilities is not None:
        return Elicited(_from_probabilities(task, item.probabilities, row), None, None)
    _check_text(item.text, settings)
    answer = await _llm_client(task, settings).elicit(item.text, list(task.labels))
    return _elicited_result(answer, item.text, settings, record_llm_call)


def _calibrate_given(
    session: Session, task_name: str, item: CalibrateItem, settings: Settings
) -> CalibrateResponse:
    """Calibrate a distribution given in the request: all database work in one call."""
    task = get_task(session, task_name)
    elicited = Elicited(_from_probabilities(task, item.probabilities, None), None, None)
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


async def _elicit_batch(
    task: Task,
    items: Sequence[CalibrateItem],
    settings: Settings,
    record_llm_call: LLMCallRecorder | None = None,
) -> list[Elicited | ServiceError]:
    """Each item's raw distribution or its error; texts go to the LLM concurrently."""
    if len(items) > settings.max_batch_size:
        raise InvalidInputError(
            f"too many items: {len(items)} > {settings.max_batch_size}",
            [field_error("items", f"at most {settings.max_batch_size} items per batch")],
        )
    outcomes: list[Elicited | ServiceError | None] = [None] * len(items)
    text_items = []
    for index, item in enumerate(items):
        try:
            if item.probabilities is not None:
                outcomes[index] = await _elicit_item(task, item, settings, row=index)
            else:
                _check_text(item.text, settings)
                text_items.append(index)
        except ServiceError as exc:
            outcomes[index] = exc
    if text_items:
        try:
            client = _llm_client(task, settings)
        except ServiceError as exc:
            for index in text_items:
                outcomes[index] = exc
        else:
            texts = [items[i].text for i in text_items]
            answers = await client.elicit_many(texts, list(task.labels))
            for index, answer in zip(text_items, answers, strict=True):
                try:
                    outcomes[index] = _elicited_result(
                        answer, items[index].text, settings, record_llm_call
                    )
                except ServiceError as exc:
                    outcomes[index] = exc
    return outcomes


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
            elicited = await _elicit_item(task, request, settings, record_llm_call)
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
    outcomes = await _elicit_batch(task, request.items, settings, record_llm_call)
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
