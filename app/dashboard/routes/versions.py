"""Operating points, calibration versions (and activation), monitoring."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app.api.deps import SessionDep, SettingsDep
from app.dashboard import auth, views
from app.dashboard.auth import AdminDep
from app.dashboard.pages import fmt, redirect, render, task_url
from app.dashboard.routing import dashboard_router
from app.schemas.common import RowId
from app.services import versions as version_service
from app.services.monitoring import task_monitoring
from app.services.tasks import get_task

router = dashboard_router()


@router.get("/tasks/{name}/operating-points")
def operating_points_page(
    request: Request,
    name: str,
    session: SessionDep,
    admin: AdminDep,
    label: str | None = None,
    calibration: RowId | None = None,
) -> Response:
    task = get_task(session, name)
    context = {
        "tab": "operating-points",
        "task": task,
        "view": views.operating_points_view(session, task, calibration, label),
    }
    return render(request, "task_operating_points.html", context, admin=admin)


@router.get("/tasks/{name}/versions")
def versions_page(request: Request, name: str, session: SessionDep, admin: AdminDep) -> Response:
    task = get_task(session, name)
    context = {
        "tab": "versions",
        "task": task,
        "calibrations": version_service.list_calibrations(session, task),
    }
    return render(request, "task_versions.html", context, admin=admin)


@router.post("/tasks/{name}/calibrations/{calibration_id}/activate")
def activate_calibration(
    request: Request,
    name: str,
    calibration_id: RowId,
    session: SessionDep,
    _admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    task = get_task(session, name)
    calibration = version_service.get_calibration(session, task, calibration_id)
    version_service.activate(session, task, calibration)
    message = f"Version {calibration.version} is now active (T = {fmt(calibration.temperature)})."
    return redirect(request, task_url(name, "versions"), message, "success")


@router.get("/tasks/{name}/monitoring")
def monitoring_page(
    request: Request, name: str, session: SessionDep, settings: SettingsDep, admin: AdminDep
) -> Response:
    task = get_task(session, name)
    context = {
        "tab": "monitoring",
        "task": task,
        "monitoring": task_monitoring(session, task, settings),
    }
    return render(request, "task_monitoring.html", context, admin=admin)
