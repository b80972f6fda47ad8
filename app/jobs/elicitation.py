"""Running an elicitation job: ask the task's LLM about what is missing, batch by batch.

The worker (``app.jobs.worker``) claims the job and keeps its lease; an ``ElicitationRun``
recomputes the work from the database (``missing_work``), so a resumed job asks only about what
is still missing and stores nothing twice. After each batch the answers, the progress counters,
the first errors and the heartbeat are committed in one transaction, guarded by the job still
being the worker's; then ``cancel_requested`` and the worker's stop signal are checked (a stop
puts the job back in the queue). On resume ``done`` becomes ``total`` minus what is still missing
and ``failed`` starts again from 0, because the examples that failed before are retried.

A fatal LLM error (``FATAL_KINDS``: the server rejects the structured-output mode, or the API
key variable is not set) stops the job at once as ``failed``, with a message naming the problem:
the client does not ask about the rest of the batch, and no later batch is started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.db import transaction
from app.llm.client import Elicitation as ElicitationResult
from app.llm.client import LLMClient, aclose_endpoint_clients
from app.llm.config import LLMConfig
from app.llm.errors import FATAL_KINDS, LLMError
from app.models import Example, Task, utcnow
from app.services.elicitation import AnswerKey, current_answer_key, missing_work, store_answers
from app.services.jobs import MAX_JOB_ERRORS
from app.services.tasks import task_llm_config, task_template

if TYPE_CHECKING:
    from app.jobs.worker import Worker

_TEXT_EXCERPT = 80


@dataclass(frozen=True)
class _WorkItem:
    example_id: int
    sample_indices: list[int]
    text: str


@dataclass
class _JobPlan:
    job_id: str
    task_id: int
    labels: list[str]
    key: AnswerKey
    config: LLMConfig
    client: LLMClient
    items: list[_WorkItem]
    attempt: int


class ElicitationRun:
    """One run of an elicitation job by a worker that has claimed it."""

    def __init__(self, worker: Worker, job_id: str) -> None:
        self.worker = worker
        self.job_id = job_id

    def run(self) -> None:
        """Prepare the work and process it; returns when the job ended or was released."""
        plan = self._prepare()
        if plan is not None:
            asyncio.run(self._process(plan))

    def _prepare(self) -> _JobPlan | None:
        with transaction(self.worker.session_factory) as session:
            job = self.worker.owned_job(session, self.job_id)
            task = session.get(Task, job.task_id)
            config = task_llm_config(task) if task is not None else None
            key = current_answer_key(task) if task is not None else None
            if task is None or config is None or key is None:
                self.worker.finish_in(job, "failed", error="the task has no LLM config")
                return None
            if job.cancel_requested:
                self.worker.finish_in(job, "cancelled")
                return None
            work = missing_work(session, task, key)
            job.done = max(job.total - len(work), 0)
            job.total = job.done + len(work)
            job.failed = 0
            job.heartbeat_at = utcnow()
            job.params = {**(job.params or {}), "task": task.name, "answer_key": asdict(key)}
            if not work:
                self.worker.finish_in(job, "succeeded")
                return None
            return _JobPlan(
                job_id=job.id,
                task_id=task.id,
                labels=list(task.labels),
                key=key,
                config=config,
                client=LLMClient(
                    config,
                    task_template(task),
                    endpoint_policy=self.worker.settings.llm_policy,
                ),
                items=[_WorkItem(ex.id, indices, ex.text) for ex, indices in work],
                attempt=job.attempts,
            )

    async def _process(self, plan: _JobPlan) -> None:
        try:
            size = self.worker.settings.job_batch_size
            for start in range(0, len(plan.items), size):
                if start > 0:
                    if self.worker.cancel_requested(plan.job_id):
                        self.worker.finish(plan.job_id, "cancelled")
                        return
                    if self.worker.stop_requested():
                        self.worker.release(plan.job_id)
                        return
                batch = plan.items[start : start + size]
                results = await plan.client.elicit_many(
                    [item.text for item in batch],
                    plan.labels,
                    sample_indices=[item.sample_indices for item in batch],
                )
                asked = [(item, r) for item, r in zip(batch, results, strict=True) if r.asked]
                self._commit_batch(plan, [item for item, _ in asked], [r for _, r in asked])
                fatal = next((r.error for r in results if _is_fatal(r.error)), None)
                if fatal is not None:
                    self.worker.finish(plan.job_id, "failed", error=f"stopped: {fatal}")
                    return
            self.worker.finish(plan.job_id, "succeeded")
        finally:
            await aclose_endpoint_clients()

    def _commit_batch(
        self,
        plan: _JobPlan,
        batch: Sequence[_WorkItem],
        results: Sequence[ElicitationResult],
    ) -> None:
        """Store a batch's answers, progress and heartbeat in one transaction."""
        with transaction(self.worker.session_factory) as session:
            job = self.worker.owned_job(session, plan.job_id)
            task = session.get(Task, plan.task_id)
            if task is None:
                raise RuntimeError("the task was deleted while its job ran")
            examples = {
                example.id: example
                for example in session.scalars(
                    select(Example).where(Example.id.in_([item.example_id for item in batch]))
                )
            }
            errors = list(job.errors or [])
            failed = 0
            for item, result in zip(batch, results, strict=True):
                example = examples.get(item.example_id)
                if example is None:  # deleted meanwhile: nothing left to ask about
                    continue
                store_answers(session, task, example, plan.key, result, plan.job_id)
                first_error = _first_sample_error(result)
                if first_error is None:
                    continue
                failed += 1
                if len(errors) < MAX_JOB_ERRORS:
                    errors.append(_error_entry(example, *first_error, attempt=plan.attempt))
            job.done += len(batch)
            job.failed += failed
            job.errors = errors
            job.heartbeat_at = utcnow()
            done, failed_total, total = job.done, job.failed, job.total
        if self.worker.on_progress is not None:
            self.worker.on_progress(plan.job_id, done, failed_total, total)


def _is_fatal(error: LLMError | None) -> bool:
    """An error every other request would repeat (``FATAL_KINDS``): the job stops."""
    return error is not None and error.kind in FATAL_KINDS


def _first_sample_error(result: ElicitationResult) -> tuple[int | None, LLMError] | None:
    for sample in result.samples:
        if sample.probabilities is None:
            return sample.index, sample.error or LLMError("unparseable", "no answer")
    if not result.samples and result.error is not None:
        return None, result.error
    return None


def _error_entry(
    example: Example, sample_index: int | None, error: LLMError, *, attempt: int
) -> dict[str, Any]:
    return {
        **error.to_dict(),
        "example_id": example.external_id,
        "text": example.text[:_TEXT_EXCERPT],
        "sample_index": sample_index,
        "attempt": attempt,
    }
