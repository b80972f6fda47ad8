"""Elicitation jobs from the dashboard: start, LLM server check, cancel, progress."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from app.api.deps import SessionDep, SettingsDep, run_in_db_thread
from app.dashboard import auth, views
from app.dashboard.auth import AdminDep
from app.dashboard.pages import redirect, task_url
from app.dashboard.routes.tasks import task_data_page
from app.dashboard.routing import FormRejected, dashboard_router
from app.errors import ServiceError
from app.services import elicitation as elicitation_service
from app.services import jobs as job_service
from app.services import llm_check
from app.services.tasks import get_task

router = dashboard_router()


def _rejected(request: Request, task_name: str, exc: ServiceError) -> FormRejected:
    """Back to the task's elicitation panel, with the service's message as an error flash."""
    url, message = task_url(task_name) + "#elicitation", exc.message
    return FormRejected(lambda _: redirect(request, url, message, "error"))


@router.post("/tasks/{name}/elicitations")
def start_elicitation(
    request: Request,
    name: str,
    session: SessionDep,
    _admin: AdminDep,
    _form: FormData = Depends(auth.verified_form),
) -> Response:
    task = get_task(session, name)
    try:
        job = elicitation_service.start_elicitation(session, task)
    except ServiceError as exc:
        raise _rejected(request, name, exc) from exc
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
        request, task_data_page, request, session, admin, name, 200, None, check
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
        raise _rejected(request, task_name, exc) from exc
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
