"""Jobs: follow one, cancel it (elicitation jobs start in routes/elicitation.py)."""

from fastapi import APIRouter

from app.api.capacity import DatabaseRoute
from app.api.deps import AdminKey, AnyKey, SessionDep
from app.api.errors import error_responses
from app.schemas.jobs import JobOut
from app.services import jobs as job_service

router = APIRouter(tags=["jobs"], route_class=DatabaseRoute)


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
