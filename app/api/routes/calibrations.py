"""Fitting calibrations, versions and rollback, and reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.api.capacity import DatabaseRoute
from app.api.deps import AdminKey, AnyKey, SessionDep, SettingsDep
from app.api.errors import error_responses
from app.schemas.calibrations import (
    CalibrationOut,
    CalibrationSummary,
    FitRequest,
    ReportQuery,
    TaskReport,
)
from app.schemas.common import RowId
from app.services import fitting as fitting_service
from app.services import reports as report_service
from app.services import versions as version_service
from app.services.tasks import active_calibration, get_task

router = APIRouter(prefix="/tasks/{name}", tags=["calibrations"], route_class=DatabaseRoute)


@router.post(
    "/fit",
    status_code=status.HTTP_201_CREATED,
    response_model=CalibrationOut,
    responses=error_responses(403, 404, 409),
)
def fit(
    name: str, body: FitRequest, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> CalibrationOut:
    task = get_task(session, name)
    calibration = fitting_service.fit_task(session, task, body, settings)
    return version_service.calibration_out(calibration, task.name)


@router.get(
    "/calibrations", response_model=list[CalibrationSummary], responses=error_responses(404)
)
def list_calibrations(name: str, session: SessionDep, _key: AnyKey) -> list[CalibrationSummary]:
    task = get_task(session, name)
    return [
        version_service.calibration_summary(c)
        for c in version_service.list_calibrations(session, task)
    ]


@router.get(
    "/calibrations/{calibration_id}", response_model=CalibrationOut, responses=error_responses(404)
)
def get_calibration(
    name: str, calibration_id: RowId, session: SessionDep, _key: AnyKey
) -> CalibrationOut:
    task = get_task(session, name)
    return version_service.calibration_out(
        version_service.get_calibration(session, task, calibration_id), name
    )


@router.post(
    "/calibrations/{calibration_id}/activate",
    response_model=CalibrationOut,
    responses=error_responses(403, 404, 409),
)
def activate(
    name: str, calibration_id: RowId, session: SessionDep, _key: AdminKey
) -> CalibrationOut:
    task = get_task(session, name)
    calibration = version_service.get_calibration(session, task, calibration_id)
    version_service.activate(session, task, calibration)
    return version_service.calibration_out(calibration, name)


@router.get(
    "/report",
    response_model=TaskReport,
    response_model_exclude_unset=True,
    responses=error_responses(404, 409),
)
def report(
    name: str, query: Annotated[ReportQuery, Query()], session: SessionDep, _key: AnyKey
) -> dict[str, Any]:
    """The calibration report of a calibration (default: the active one) on held-out data."""
    task = get_task(session, name)
    if query.calibration_id is not None:
        calibration = version_service.get_calibration(session, task, query.calibration_id)
    else:
        calibration = active_calibration(session, task)
    return report_service.task_report(
        session,
        task,
        calibration,
        n_bins=query.n_bins,
        binning=query.binning,
        n_boot=query.n_boot,
    )
