"""The fit page: a calibration's report, and the form that fits a new version."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.deps import SessionDep, SettingsDep
from app.dashboard import auth, extras, views
from app.dashboard.auth import AdminDep
from app.dashboard.pages import redirect, render, task_url
from app.dashboard.routing import FormRejected, dashboard_router
from app.errors import ServiceError
from app.schemas.calibrations import FitRequest
from app.schemas.common import RowId
from app.services import fitting as fitting_service
from app.services.tasks import get_task

router = dashboard_router()


FIT_DEFAULTS = {
    "objective": "nll",
    "eps_mode": "auto",
    "eps": "0.01",
    "holdout": "0.3",
    "seed": "0",
    "refit": True,
    "activate": True,
    "source": "auto",
    **extras.CONFORMAL_DEFAULTS,
}


def _fit_page(
    request: Request,
    session,
    admin: auth.Admin,
    name: str,
    calibration_id: RowId | None = None,
    n_bins: int = 15,
    binning: str = "uniform",
    form_values: dict[str, Any] | None = None,
    form_errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    task = get_task(session, name)
    context = {
        "tab": "fit",
        "task": task,
        "view": views.fit_view(session, task, calibration_id, n_bins, binning),
        "n_bins": n_bins,
        "binning": binning,
        "values": form_values or FIT_DEFAULTS,
        "form_errors": form_errors or [],
    }
    return render(request, "task_fit.html", context, status_code, admin=admin)


@router.get("/tasks/{name}/fit")
def fit_page(
    request: Request,
    name: str,
    session: SessionDep,
    admin: AdminDep,
    calibration: RowId | None = None,
    n_bins: int = Query(default=15, ge=2, le=50),
    binning: str = Query(default="uniform", pattern="^(uniform|quantile)$"),
) -> Response:
    return _fit_page(request, session, admin, name, calibration, n_bins, binning)


def _fit_values(form: FormData) -> dict[str, Any]:
    def text(field: str) -> str:
        value = form.get(field)
        return value.strip() if isinstance(value, str) else str(FIT_DEFAULTS[field])

    return {
        "objective": text("objective"),
        "eps_mode": text("eps_mode"),
        "eps": text("eps"),
        "holdout": text("holdout"),
        "seed": text("seed"),
        "refit": form.get("refit") is not None,
        "activate": form.get("activate") is not None,
        "source": text("source"),
        **extras.conformal_values(form),
    }


def _fit_request(values: dict[str, Any]) -> tuple[FitRequest | None, list[str]]:
    errors: list[str] = []
    numbers: dict[str, float | int] = {}
    fields = [("holdout", float), ("seed", int)]
    if values["eps_mode"] != "auto":
        fields.append(("eps", float))
    for field, kind in fields:
        try:
            numbers[field] = kind(values[field])
        except ValueError:
            errors.append(f"{field}: not a valid {'integer' if kind is int else 'number'}")
    conformal, conformal_errors = extras.conformal_payload(values)
    errors += conformal_errors
    if errors:
        return None, errors
    payload = {
        "method": "temperature",
        "objective": values["objective"],
        "eps": "auto" if values["eps_mode"] == "auto" else numbers["eps"],
        "validation": {"holdout": numbers["holdout"], "seed": numbers["seed"]},
        "refit": values["refit"],
        "activate": values["activate"],
        "source": values["source"],
        "conformal": conformal,
    }
    try:
        return FitRequest.model_validate(payload), []
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "form"
            errors.append(f"{where}: {err['msg']}")
        return None, errors


@router.post("/tasks/{name}/fit")
def fit(
    request: Request,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminDep,
    form: FormData = Depends(auth.verified_form),
) -> Response:
    task = get_task(session, name)
    values = _fit_values(form)
    fit_request, errors = _fit_request(values)
    if fit_request is None:
        return _fit_page(
            request, session, admin, name, form_values=values, form_errors=errors, status_code=422
        )
    try:
        calibration = fitting_service.fit_task(session, task, fit_request, settings)
    except ServiceError as exc:
        errors, status_code = [exc.message], exc.status_code
        raise FormRejected(
            lambda fresh: _fit_page(
                request,
                fresh,
                admin,
                name,
                form_values=values,
                form_errors=errors,
                status_code=status_code,
            )
        ) from exc
    state = "and activated" if calibration.is_active else "(not activated)"
    message = f"Fitted version {calibration.version} {state}: T = {calibration.temperature:.3f}."
    url = f"{task_url(name, 'fit')}?calibration={calibration.id}"
    return redirect(request, url, message, "success")
