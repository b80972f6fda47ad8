"""The app-facing endpoints: calibrate one or a batch, and give feedback."""

from fastapi import APIRouter, Request

from app.api.capacity import DatabaseRoute
from app.api.deps import AnyKey, MetricsDep, SessionDep, SettingsDep, run_in_db_thread
from app.api.errors import error_responses
from app.errors import NotFoundError, ServiceError
from app.schemas.calibrate import (
    CalibrateBatchRequest,
    CalibrateBatchResponse,
    CalibrateRequest,
    CalibrateResponse,
    FeedbackRequest,
    FeedbackResponse,
)
from app.services import serving as serving_service
from app.services.tasks import get_task

router = APIRouter(tags=["calibrate"], route_class=DatabaseRoute)


@router.post(
    "/calibrate", response_model=CalibrateResponse, responses=error_responses(404, 502, 504)
)
async def calibrate(
    request: Request,
    body: CalibrateRequest,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    _key: AnyKey,
) -> CalibrateResponse:
    """Calibrated probabilities for a text (asks the task's LLM) or for given probabilities."""
    # async: the LLM call is awaited; database work runs in a bounded thread pool, in one call
    # when no LLM is involved.
    try:
        if body.probabilities is not None:
            result = await run_in_db_thread(
                request, serving_service.calibrate_given, session, body.task, body
            )
        else:
            task = await run_in_db_thread(request, get_task, session, body.task)
            elicited = await serving_service.elicit_item(
                task, body, settings, metrics.record_llm_call
            )
            result = await run_in_db_thread(
                request, serving_service.respond, session, task, elicited, body.target_precision
            )
    except NotFoundError:
        raise  # an unknown task name is not a metric label
    except ServiceError as exc:
        metrics.record_calibrate(body.task, exc.code)
        raise
    metrics.record_calibrate(body.task, "ok")
    return result


@router.post(
    "/calibrate/batch", response_model=CalibrateBatchResponse, responses=error_responses(404)
)
async def calibrate_batch(
    request: Request,
    body: CalibrateBatchRequest,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    _key: AnyKey,
) -> CalibrateBatchResponse:
    """Per-item results and errors; one failing item does not fail the batch."""
    task = await run_in_db_thread(request, get_task, session, body.task)
    outcomes = await serving_service.elicit_batch(
        task, body.items, settings, metrics.record_llm_call
    )
    result = await run_in_db_thread(
        request, serving_service.respond_batch, session, task, body.items, outcomes
    )
    for item in result.results:
        metrics.record_calibrate(task.name, "ok" if item.error is None else item.error.code)
    return result


@router.post("/feedback", response_model=FeedbackResponse, responses=error_responses(404))
def feedback(body: FeedbackRequest, session: SessionDep, _key: AnyKey) -> FeedbackResponse:
    """The true label of a past /calibrate result, for monitoring."""
    return serving_service.record_feedback(session, body)
