"""The app-facing endpoints: calibrate one or a batch, and give feedback."""

from fastapi import APIRouter

from app.api.capacity import DatabaseRoute
from app.api.deps import AnyKey, DbRunnerDep, MetricsDep, SessionDep, SettingsDep
from app.api.errors import error_responses
from app.schemas.calibrate import (
    CalibrateBatchRequest,
    CalibrateBatchResponse,
    CalibrateRequest,
    CalibrateResponse,
    FeedbackRequest,
    FeedbackResponse,
)
from app.services import serving as serving_service

router = APIRouter(tags=["calibrate"], route_class=DatabaseRoute)


@router.post(
    "/calibrate", response_model=CalibrateResponse, responses=error_responses(404, 409, 502, 504)
)
async def calibrate(
    body: CalibrateRequest,
    run_db: DbRunnerDep,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    _key: AnyKey,
) -> CalibrateResponse:
    """Calibrated probabilities for a text (asks the task's LLM) or for given probabilities."""
    # async: the LLM call is awaited; database work runs in a bounded thread pool.
    return await serving_service.calibrate(run_db, session, body, settings, metrics)


@router.post(
    "/calibrate/batch", response_model=CalibrateBatchResponse, responses=error_responses(404)
)
async def calibrate_batch(
    body: CalibrateBatchRequest,
    run_db: DbRunnerDep,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    _key: AnyKey,
) -> CalibrateBatchResponse:
    """Per-item results and errors; one failing item does not fail the batch."""
    return await serving_service.calibrate_batch(run_db, session, body, settings, metrics)


@router.post("/feedback", response_model=FeedbackResponse, responses=error_responses(404))
def feedback(body: FeedbackRequest, session: SessionDep, _key: AnyKey) -> FeedbackResponse:
    """The true label of a past /calibrate result, for monitoring."""
    return serving_service.record_feedback(session, body)
