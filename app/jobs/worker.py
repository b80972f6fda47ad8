"""The job worker: claims queued (or abandoned) jobs and runs them in batches.

Claiming: on PostgreSQL the oldest claimable job is selected ``FOR UPDATE SKIP LOCKED`` and marked
running in the same transaction, so concurrent workers never claim the same job. SQLite has no
row locks; there a compare-and-set ``UPDATE ... WHERE id = :id AND <still claimable>`` decides,
and a worker that loses the race tries the next candidate. A job is claimable when it is queued,
or running with a heartbeat older than ``job_lease_s`` (its worker died). Lease times come from
the workers' clocks, which are assumed to agree to well within the lease.

Running: while a job runs, a background thread refreshes its heartbeat every third of the lease,
so a batch may take longer than the lease without the job being reclaimed. After each batch the
answers, the progress counters, the first errors and the heartbeat are committed in one
transaction, guarded by the job still being ours; then ``cancel_requested`` and the stop signal
are checked. A stop signal (SIGTERM) puts the job back in the queue for another worker.

Resuming: a job's work is always recomputed from the database (``missing_work``), so a resumed
job asks only about what is still missing and stores nothing twice (the answer key is unique and
answers are upserted). On resume ``done`` becomes ``total`` minus what is still missing and
``failed`` starts again from 0, because the examples that failed before are retried.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import create_db_engine, create_session_factory, transaction
from app.jobs.elicitation import ElicitationRun
from app.models import Job, utcnow
from app.services.jobs import MAX_JOB_ERRORS

logger = logging.getLogger(__name__)

_SQLITE_CLAIM_CANDIDATES = 5

ProgressHook = Callable[[str, int, int, int], None]
"""Called after each committed batch with (job id, done, failed, total)."""


class JobLost(Exception):
    """The job is no longer ours: reclaimed by another worker after our lease lapsed."""


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims and runs jobs against one database. Safe to run many, in threads or processes."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        worker_id: str | None = None,
        *,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.worker_id = worker_id or _default_worker_id()
        self.on_progress = on_progress
        self._stop_event = threading.Event()

    # ------------------------------------------------------------------ claiming

    def _claimable(self, now):
        stale_before = now - timedelta(seconds=self.settings.job_lease_s)
        return or_(
            Job.status == "queued",
            and_(Job.status == "running", Job.heartbeat_at < stale_before),
        )

    def claim_next_job(self) -> str | None:
        """Claim the oldest claimable job and return its id, or None when there is none."""
        with transaction(self.session_factory) as session:
            now = utcnow()
            on_postgres = session.get_bind().dialect.name == "postgresql"
            candidates = session.scalars(
                select(Job.id)
                .where(self._claimable(now))
                .order_by(Job.created_at, Job.id)
                .limit(1 if on_postgres else _SQLITE_CLAIM_CANDIDATES)
                .with_for_update(skip_locked=True)
            ).all()
            for job_id in candidates:
                claimed = session.execute(
                    update(Job)
                    .where(Job.id == job_id, self._claimable(now))
                    .values(
                        status="running",
                        worker_id=self.worker_id,
                        heartbeat_at=now,
                        attempts=Job.attempts + 1,
                        started_at=func.coalesce(Job.started_at, literal(now, Job.started_at.type)),
                    )
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:
                    logger.info("worker %s claimed job %s", self.worker_id, job_id)
                    return job_id
        return None

    # ------------------------------------------------------------------ running

    def run_job(self, job_id: str) -> None:
        """Run a job this worker has claimed until it finishes, is cancelled or is released."""
        heartbeat = _Heartbeat(self, job_id)
        heartbeat.start()
        try:
            ElicitationRun(self, job_id).run()
        except JobLost:
            logger.warning(
                "job %s was reclaimed by another worker; %s stops", job_id, self.worker_id
            )
        except Exception as exc:
            logger.exception("job %s failed", job_id)
            self.finish(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            heartbeat.stop()

    def owned_job(self, session: Session, job_id: str) -> Job:
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job is None or job.status != "running" or job.worker_id != self.worker_id:
            raise JobLost(job_id)
        return job

    def stop_requested(self) -> bool:
        """The worker is stopping (SIGTERM): a running job goes back to the queue."""
        return self._stop_event.is_set()

    def cancel_requested(self, job_id: str) -> bool:
        with transaction(self.session_factory) as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def finish(self, job_id: str, status: str, error: str | None = None) -> None:
        try:
            with transaction(self.session_factory) as session:
                self.finish_in(self.owned_job(session, job_id), status, error)
        except JobLost:
            logger.warning("job %s was no longer ours when it ended as %s", job_id, status)

    def finish_in(self, job: Job, status: str, error: str | None = None):
        if error is not None and len(job.errors or []) < MAX_JOB_ERRORS:
            job.errors = [*(job.errors or []), {"kind": "job", "message": error[:500]}]
        job.status = status
        job.finished_at = utcnow()
        job.heartbeat_at = job.finished_at
        logger.info("job %s %s (%d/%d, %d failed)", job.id, status, job.done, job.total, job.failed)

    def release(self, job_id: str) -> None:
        """Put a job back in the queue (this worker is stopping)."""
        with transaction(self.session_factory) as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == self.worker_id, Job.status == "running")
                .values(status="queued", worker_id=None)
                .execution_options(synchronize_session=False)
            )
        logger.info("worker %s released job %s", self.worker_id, job_id)

    def heartbeat(self, job_id: str) -> bool:
        """Refresh the job's lease; False when the job is no longer this worker's."""
        with transaction(self.session_factory) as session:
            touched = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == self.worker_id, Job.status == "running")
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return touched.rowcount == 1

    # ------------------------------------------------------------------ loops

    def run_until_idle(self) -> int:
        """Run claimable jobs until there is none left; return how many were run."""
        count = 0
        while (job_id := self.claim_next_job()) is not None:
            self.run_job(job_id)
            count += 1
        return count

    def run_forever(self, stop_event: threading.Event) -> None:
        """Claim and run jobs until ``stop_event`` is set, polling every ``worker_poll_s``."""
        self._stop_event = stop_event
        logger.info("worker %s started", self.worker_id)
        while not stop_event.is_set():
            try:
                job_id = self.claim_next_job()
            except Exception:
                logger.exception("worker %s could not claim a job", self.worker_id)
                job_id = None
            if job_id is None:
                stop_event.wait(self.settings.worker_poll_s)
                continue
            self.run_job(job_id)
        logger.info("worker %s stopped", self.worker_id)


class _Heartbeat:
    """Refreshes a running job's heartbeat from a background thread."""

    def __init__(self, worker: Worker, job_id: str) -> None:
        self.worker = worker
        self.job_id = job_id
        self.interval_s = worker.settings.job_lease_s / 3
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                if not self.worker.heartbeat(self.job_id):
                    return
            except Exception:
                logger.exception("heartbeat of job %s failed", self.job_id)


class EmbeddedWorker:
    """A worker in a daemon thread of the API process (``verbcal serve`` on SQLite)."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.worker = Worker(session_factory, settings)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.worker.run_forever,
            args=(self._stop_event,),
            name="verbcal-embedded-worker",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)


def run_worker_process(settings: Settings) -> None:
    """Run a worker in the foreground until SIGTERM or SIGINT (``verbcal worker``).

    On a signal the current batch finishes, its answers are committed and the job goes back to
    the queue; a second signal is not needed.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    engine = create_db_engine(settings.database_url)
    stop_event = threading.Event()

    def request_stop(signum, _frame) -> None:
        logger.info("received signal %d, stopping after the current batch", signum)
        stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        Worker(create_session_factory(engine), settings).run_forever(stop_event)
    finally:
        engine.dispose()


if __name__ == "__main__":
    run_worker_process(Settings())
