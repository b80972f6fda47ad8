"""Elicitation jobs: start one for a task, follow it, cancel it."""

from fastapi import APIRouter, status

from app.api.deps import AdminKey, AnyKey, SessionDep, SettingsDep
from app.api.errors import error_responses
from app.schemas.jobs import JobOut
from app.services import elicitation as elicitation_service
from app.services import jobs as job_service
from app.services.tasks import get_task

router = APIRouter(tags=["jobs"])


@router.post(
    "/tasks/{name}/elicitations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses=error_responses(403, 404, 409),
)
def start_elicitation(
    name: str, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> JobOut:
    """Queue a job asking the task's LLM about every example lacking an answer."""
    task = get_task(session, name)
    job = elicitation_service.start_elicitation(session, task, settings)
    return job_service.job_summary(job, session)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=error_responses(404))
def get_job(job_id: str, session: SessionDep, _key: AnyKey) -> JobOut:
    return job_service.job_summary(job_service.get_job(session, job_id), session)


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobOut, responses=error_responses(403, 404, 409)
)
def cancel_job(job_id: str, session: SessionDep, _key: AdminKey) -> JobOut:
    """Cancel a queued job at once, or ask a running one to stop after its current batch."""
    job = job_service.cancel_job(session, job_service.get_job(session, job_id))
    return job_service.job_summary(job, session)
