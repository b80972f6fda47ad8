"""The admin dashboard: server-rendered pages under /admin, thin routes over the services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from app.api.deps import SessionDep, SettingsDep, run_in_db_thread
from app.dashboard import auth, views
from app.dashboard.auth import AdminDep, CsrfRejected, LoginRequired
from app.errors import InvalidInputError, ServiceError
from app.llm.check import ServerCheck
from app.schemas.calibrations import FitRequest
from app.schemas.common import RowId
from app.services import elicitation as elicitation_service
from app.services import examples as example_service
from app.services import fitting as fitting_service
from app.services import jobs as job_service
from app.services import keys as key_service
from app.services import llm_check, uploads
from app.services.monitoring import task_monitoring
from app.services.tasks import get_task

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
FIT_DEFAULTS = {
    "objective": "nll",
    "eps_mode": "auto",
    "eps": "0.01",
    "holdout": "0.3",
    "seed": "0",
    "activate": True,
    "source": "auto",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


templates.env.filters["fmt"] = _fmt


class DashboardRoute(APIRoute):
    """Turns dashboard failures into pages: login redirects, CSRF and service errors."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def dashboard_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = _login_redirect(request)
            except CsrfRejected:
                response = error_page(
                    request, 403, "The form has expired or did not come from this dashboard. "
                    "Go back, reload the page and submit again.",
                )  # fmt: skip
            except ServiceError as exc:
                response = error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                message = "; ".join(str(e.get("msg", "")) for e in exc.errors()) or "bad request"
                response = error_page(request, 422, f"Invalid address: {message}.")
            auth.save_session(request, response)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return dashboard_handler


router = APIRouter(prefix="/admin", include_in_schema=False, route_class=DashboardRoute)


def _login_redirect(request: Request) -> Response:
    if request.url.path.endswith("/progress"):
        return JSONResponse({"error": "login required"}, status_code=401)
    target = "/admin/login"
    if request.method == "GET" and request.url.path != "/admin":
        target += "?next=" + quote(
            request.url.path + ("?" + request.url.query if request.url.query else "")
        )
    return RedirectResponse(target, status_code=303)


def _safe_next(value: str | None) -> str:
    # Only local dashboard paths: no scheme, no host, no protocol-relative //host.
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    admin: auth.Admin | None = None,
) -> Response:
    session = auth.current_session(request)
    page = {
        "request": request,
        "admin": admin,
        "csrf_field": auth.CSRF_FIELD,
        "csrf_token": auth.csrf_token(request),
        "flashes": session.pop_flashes(),
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> Response:
    session = auth.current_session(request)
    context = {"status_code": status_code, "message": message}
    admin = None
    if session.key_id is not None:  # a logged-in visitor keeps the navigation
        admin = auth.Admin(key_id=session.key_id, name="", prefix="")
    return render(request, "error.html", context, status_code=status_code, admin=admin)


def redirect(request: Request, url: str, message: str | None = None, kind: str = "info"):
    if message:
        auth.current_session(request).flash(message, kind)
    return RedirectResponse(url, status_code=303)


def task_url(name: str, page: str = "") -> str:
    return f"/admin/tasks/{quote(name)}" + (f"/{page}" if page else "")


# --- login ---------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request, session: SessionDep, form: FormData = Depends(auth.verified_form)
) -> Response:
    secret = str(form.get("api_key") or "").strip()
    next_url = _safe_next(str(form.get("next") or ""))
    key = key_service.authenticate(session, secret) if secret else None
    if key is None or key.role != "admin":
        error = (
            "This key cannot log in: the dashboard needs an admin key."
            if key is not None
            else "Unknown or revoked API key."
        )
        return render(request, "login.html", {"next": next_url, "error": error}, 401)
    key_service.stamp_use(key)
    auth.log_in(request, key)
    return redirect(request, next_url, f"Logged in with key {key.prefix}… ({key.name}).")


@router.post("/logout")
def logout(
    request: Request, _admin: AdminDep, _form: FormData = Depends(auth.verified_form)
) -> Response:
    auth.log_out(request)
    return redirect(request, "/admin/login", "Logged out.")


# --- tasks ---------------------------------------------------------------------------------


@router.get("")
def tasks_page(
    request: Request, session: SessionDep, settings: SettingsDep, admin: AdminDep
) -> Response:
    rows = views.tasks_overview(session, settings)
    return render(request, "tasks.html", {"rows": rows}, admin=admin)


def _task_page(
    request: Request,
    session,
    admin: auth.Admin,
    name: str,
    status_code: int = 200,
    upload: dict[str, Any] | None = None,
    check: ServerCheck | None = None,
) -> Response:
    task = get_task(session, name)
    context = {"tab": "data", **views.task_data(session, task), "upload": upload, "check": check}
    return render(request, "task_data.html", context, status_code, admin=admin)


@router.get("/tasks/{name}")
def task_page(request: Request, name: str, session: SessionDep, admin: AdminDep) -> Response:
    return _task_page(request, session, admin, name)


@router.post("/tasks/{name}/examples")
def upload_examples(
    request: Request,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminDep,
    form: FormData = Depends(auth.verified_form),
) -> Response:
    task = get_task(session, name)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        failure = {"message": "Choose a CSV or JSONL file to upload.", "errors": []}
        return _task_page(request, session, admin, name, 422, failure)
    content = upload.file.read(MAX_UPLOAD_BYTES + 1)
    try:
        if len(content) > MAX_UPLOAD_BYTES:
            raise InvalidInputError(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
        rows = uploads.parse_upload(content, upload.content_type or "", upload.filename)
        result = example_service.import_examples(session, task, rows, settings)
    except InvalidInputError as exc:
        # Nothing of a rejected file may be committed by the request's session.
        session.rollback()
        failure = {
            "message": exc.message,
            "errors": exc.details if isinstance(exc.details, list) else [],
            "filename": upload.filename,
        }
        return _task_page(request, session, admin, name, 422, failure)
    message = (
        f"Imported {upload.filename}: {result.received} rows, {result.inserted} new, "
        f"{result.updated} updated, {result.unchanged} unchanged."
    )
    return redirect(request, task_url(name), message, "success")


# --- elicitation jobs ----------------------------------------------------------------------


@router.post("/tasks/{name}/elicitations")
def start_elicitation(
    request: Request,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    task = get_task(session, name)
    try:
        job = elicitation_service.start_elicitation(session, task, settings)
    except ServiceError as exc:
        session.rollback()
        return redirect(request, task_url(name) + "#elicitation", exc.message, "error")
    message = (
        f"Elicitation job started: {job.total} examples to ask about."
        if job.total
        else "Every example already has an answer: nothing to ask."
    )
    return redirect(request, task_url(name) + "#elicitation", message, "success")


@router.post("/tasks/{name}/llm/check")
async def check_llm(
    request: Request,
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    """Probe the task's LLM server and show the result in the elicitation panel."""
    plan = await run_in_db_thread(request, llm_check.plan_check, session, name, settings.llm_policy)
    check = await llm_check.run_check(plan)
    return await run_in_db_thread(
        request, _task_page, request, session, admin, name, 200, None, check
    )


@router.post("/jobs/{job_id}/cancel")
def cancel_job(
    request: Request,
    job_id: str,
    session: SessionDep,
    _admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    job = job_service.get_job(session, job_id)
    task_name = job_service.job_summary(job, session).task or ""
    try:
        job = job_service.cancel_job(session, job)
    except ServiceError as exc:
        session.rollback()
        return redirect(request, task_url(task_name) + "#elicitation", exc.message, "error")
    message = (
        "Job cancelled."
        if job.status == "cancelled"
        else "Cancellation requested: the job stops after its current batch."
    )
    return redirect(request, task_url(task_name) + "#elicitation", message, "success")


@router.get("/jobs/{job_id}/progress")
def job_progress(job_id: str, session: SessionDep, _admin: AdminDep) -> Response:
    job = job_service.get_job(session, job_id)
    return JSONResponse(views.job_progress(job_service.job_summary(job, session)))


# --- fit -----------------------------------------------------------------------------------


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
        "activate": form.get("activate") is not None,
        "source": text("source"),
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
    if errors:
        return None, errors
    payload = {
        "method": "temperature",
        "objective": values["objective"],
        "eps": "auto" if values["eps_mode"] == "auto" else numbers["eps"],
        "validation": {"holdout": numbers["holdout"], "seed": numbers["seed"]},
        "activate": values["activate"],
        "source": values["source"],
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
        session.rollback()
        return _fit_page(
            request,
            session,
            admin,
            name,
            form_values=values,
            form_errors=[exc.message],
            status_code=exc.status_code,
        )
    state = "and activated" if calibration.is_active else "(not activated)"
    message = f"Fitted version {calibration.version} {state}: T = {calibration.temperature:.3f}."
    url = f"{task_url(name, 'fit')}?calibration={calibration.id}"
    return redirect(request, url, message, "success")


# --- operating points, versions, monitoring ------------------------------------------------


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
        "calibrations": fitting_service.list_calibrations(session, task),
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
    calibration = fitting_service.get_calibration(session, task, calibration_id)
    fitting_service.activate(session, task, calibration)
    message = f"Version {calibration.version} is now active (T = {_fmt(calibration.temperature)})."
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
