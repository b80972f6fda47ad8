"""Calibration on labelled traffic."""

from fastapi import APIRouter, Query

from app.api.capacity import DatabaseRoute
from app.api.deps import AnyKey, SessionDep, SettingsDep
from app.api.errors import error_responses
from app.schemas.monitoring import TaskMonitoring
from app.services.monitoring import task_monitoring
from app.services.tasks import get_task

router = APIRouter(prefix="/tasks/{name}", tags=["monitoring"], route_class=DatabaseRoute)


@router.get("/monitoring", response_model=TaskMonitoring, responses=error_responses(404))
def monitoring(
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    _key: AnyKey,
    window: int | None = Query(default=None, ge=1, le=100_000),
) -> TaskMonitoring:
    """Metrics over recent requests with feedback, fit-time metrics, and a drift flag."""
    return task_monitoring(session, get_task(session, name), settings, window)
