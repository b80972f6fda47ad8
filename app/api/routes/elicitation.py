"""Elicitation: start a job asking a task's LLM, and check the LLM server before that."""

from fastapi import APIRouter, Request, status

from app.api.capacity import DatabaseRoute
from app.api.deps import AdminKey, SessionDep, SettingsDep, run_in_db_thread
from app.api.errors import error_responses
from app.llm.check import ServerCheck
from app.schemas.jobs import JobOut
from app.services import elicitation as elicitation_service
from app.services import jobs as job_service
from app.services import llm_check
from app.services.tasks import get_task

router = APIRouter(prefix="/tasks/{name}", tags=["elicitation"], route_class=DatabaseRoute)


@router.post(
    "/elicitations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses=error_responses(403, 404, 409),
)
def start_elicitation(name: str, session: SessionDep, _key: AdminKey) -> JobOut:
    """Queue a job asking the task's LLM about every example lacking an answer."""
    task = get_task(session, name)
    job = elicitation_service.start_elicitation(session, task)
    return job_service.job_summary(job, session)


@router.post("/llm/check", response_model=ServerCheck, responses=error_responses(403, 404, 409))
async def check_llm(
    request: Request, name: str, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> ServerCheck:
    """Probe the task's LLM server: each structured-output mode, `seed` and `n > 1`.

    Sends about five short real requests and recommends a mode; never shows a secret.
    """
    plan = await run_in_db_thread(request, llm_check.plan_check, session, name, settings.llm_policy)
    return await llm_check.run_check(plan)
