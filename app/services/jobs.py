"""Jobs: lookup, cancellation and their API view."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import ConflictError, NotFoundError
from app.models import Job, Task, utcnow
from app.schemas.jobs import JobError, JobOut

MAX_JOB_ERRORS = 20
"""Most errors a job records (the first ones): enough to diagnose, bounded in size."""


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next batch boundary.

    Conditional updates make this safe against a worker claiming or finishing the job at the
    same moment. A finished job cannot be cancelled (ConflictError).
    """
    cancelled_queued = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cancelled_queued.rowcount == 0:
        flagged_running = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running")
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        if flagged_running.rowcount == 0:
            session.refresh(job)
            raise ConflictError(
                f"job {job.id} has already {job.status}",
                {"job_id": job.id, "status": job.status},
            )
    session.flush()
    session.refresh(job)
    return job


def job_summary(job: Job, session: Session | None = None) -> JobOut:
    """The API view of a job. The task name is read from the job's params when recorded."""
    task_name = (job.params or {}).get("task")
    if task_name is None and session is not None:
        task_name = session.scalar(select(Task.name).where(Task.id == job.task_id))
    return JobOut(
        id=job.id,
        kind=job.kind,
        task=task_name,
        status=job.status,
        total=job.total,
        done=job.done,
        failed=job.failed,
        errors=[JobError.model_validate(entry) for entry in job.errors or []],
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
