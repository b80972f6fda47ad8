"""Elicitation: the answer key, starting jobs, what is missing under the key, storing answers.

The unit of a job is the *example*: ``total`` counts the examples that lack at least one of the
k samples (0..k−1) under the task's current answer key, and a worker asks each of them only for
the sample indices it lacks. A stored ``failed`` answer counts as missing, so re-running retries
it; an ``ok`` or ``repaired`` answer is never asked for again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ConflictError, TaskNotReadyError, field_error
from app.llm.client import Elicitation as ElicitationResult
from app.llm.client import SampleRecord
from app.models import (
    ACTIVE_JOB_STATUSES,
    ANSWER_KEY_COLUMNS,
    Elicitation,
    Example,
    Job,
    Task,
    utcnow,
)
from app.services.tasks import task_llm_config, task_prompt_version

ELICITATION_JOB = "elicitation"


@dataclass(frozen=True)
class AnswerKey:
    """What identifies the LLM answers that belong to a task's current configuration."""

    base_url: str
    model: str
    prompt_version: str
    params_fingerprint: str
    samples: int


LLM_SOURCE = "llm"


def answer_key_filter(task: Task, key: AnswerKey) -> list[Any]:
    """SQL conditions selecting the task's LLM answers stored under ``key`` (samples 0..k−1)."""
    return [
        Elicitation.task_id == task.id,
        Elicitation.source == LLM_SOURCE,
        Elicitation.base_url == key.base_url,
        Elicitation.model == key.model,
        Elicitation.prompt_version == key.prompt_version,
        Elicitation.params_fingerprint == key.params_fingerprint,
        Elicitation.sample_index < key.samples,
    ]


def current_answer_key(task: Task) -> AnswerKey | None:
    """The key of the answers the task's current LLM config and prompt produce, or None."""
    config = task_llm_config(task)
    if config is None:
        return None
    return AnswerKey(
        base_url=config.base_url,
        model=config.model,
        prompt_version=task_prompt_version(task),
        params_fingerprint=config.params_fingerprint(),
        samples=config.samples,
    )


ANSWERED_STATUSES = ("ok", "repaired")


def active_job(session: Session, task: Task) -> Job | None:
    """The task's queued or running elicitation job, if any."""
    return session.scalar(
        select(Job)
        .where(
            Job.task_id == task.id,
            Job.kind == ELICITATION_JOB,
            Job.status.in_(ACTIVE_JOB_STATUSES),
        )
        .order_by(Job.created_at)
        .limit(1)
    )


def start_elicitation(session: Session, task: Task) -> Job:
    """Queue a job asking the task's LLM about every example that lacks an answer.

    Raises TaskNotReadyError when the task has no LLM config and ConflictError when one of its
    jobs is already queued or running. With nothing missing the job is created as succeeded.
    """
    key = current_answer_key(task)
    if key is None:
        raise TaskNotReadyError(
            f"task {task.name!r} has no LLM config: set `llm` with PATCH /tasks/{task.name}",
            [field_error("llm", "required to elicit answers")],
        )
    running = active_job(session, task)
    if running is not None:
        raise ConflictError(
            f"task {task.name!r} already has a {running.status} elicitation job",
            {"job_id": running.id, "status": running.status},
        )
    total = len(missing_work(session, task, key))
    now = utcnow()
    job = Job(
        kind=ELICITATION_JOB,
        task_id=task.id,
        status="queued" if total else "succeeded",
        params={"task": task.name, "answer_key": asdict(key)},
        total=total,
        done=0,
        failed=0,
        errors=[],
        cancel_requested=False,
        attempts=0,
        created_at=now,
        finished_at=None if total else now,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent start won the partial unique index
        raise ConflictError(f"task {task.name!r} already has an active elicitation job") from exc
    return job


def answered_samples(session: Session, task: Task, key: AnswerKey) -> set[tuple[str, int]]:
    """(text hash, sample index) of the task's usable answers under ``key``."""
    rows = session.execute(
        select(Elicitation.text_hash, Elicitation.sample_index).where(
            *answer_key_filter(task, key), Elicitation.status.in_(ANSWERED_STATUSES)
        )
    )
    return {(text_hash, index) for text_hash, index in rows}


def missing_work(session: Session, task: Task, key: AnswerKey) -> list[tuple[Example, list[int]]]:
    """Examples of the task (by id) with the sample indices 0..k−1 they lack under ``key``."""
    answered = answered_samples(session, task, key)
    examples = session.scalars(
        select(Example).where(Example.task_id == task.id).order_by(Example.id)
    )
    work = []
    for example in examples:
        missing = [i for i in range(key.samples) if (example.text_hash, i) not in answered]
        if missing:
            work.append((example, missing))
    return work


def _insert_for(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"answers cannot be upserted on {dialect}")


def _answer_values(
    task: Task, example: Example, key: AnswerKey, sample: SampleRecord, job_id: str | None
) -> dict[str, Any]:
    answered = sample.probabilities is not None
    return {
        "task_id": task.id,
        "example_id": example.id,
        "source": LLM_SOURCE,
        "text_hash": example.text_hash,
        "base_url": key.base_url,
        "model": key.model,
        "prompt_version": key.prompt_version,
        "params_fingerprint": key.params_fingerprint,
        "sample_index": sample.index,
        "status": (sample.parse_status or "ok") if answered else "failed",
        "probabilities": list(sample.probabilities) if answered else None,
        "raw_text": sample.raw_text,
        "repairs": list(sample.repairs),
        "reasoning": sample.reasoning,
        "answer_agrees": sample.answer_agrees,
        "error": None if answered or sample.error is None else sample.error.to_dict(),
        "response_model": sample.model,
        "latency_ms": sample.latency_ms,
        "prompt_tokens": sample.prompt_tokens,
        "completion_tokens": sample.completion_tokens,
        "finish_reason": sample.finish_reason,
        "job_id": job_id,
        "created_at": utcnow(),
    }


def store_answers(
    session: Session,
    task: Task,
    example: Example,
    key: AnswerKey,
    elicitation_result: ElicitationResult,
    job_id: str | None,
) -> None:
    """Upsert one row per sample of ``elicitation_result``, keyed by the unique answer key.

    A stored failed answer is replaced by the new one; a stored usable answer is kept as it is
    (so two workers racing on one sample store it once, and a later failure never erases it).
    """
    store_samples(session, task, example, key, elicitation_result.samples, job_id)


def store_samples(
    session: Session,
    task: Task,
    example: Example,
    key: AnswerKey,
    samples: Iterable[SampleRecord],
    job_id: str | None,
) -> None:
    rows = [_answer_values(task, example, key, sample, job_id) for sample in samples]
    if not rows:
        return
    insert = _insert_for(session)
    statement = insert(Elicitation.__table__).values(rows)
    replaceable = set(rows[0]) - set(ANSWER_KEY_COLUMNS)
    statement = statement.on_conflict_do_update(
        index_elements=list(ANSWER_KEY_COLUMNS),
        set_={column: statement.excluded[column] for column in replaceable},
        where=Elicitation.__table__.c.status == "failed",
    )
    session.execute(statement)


def recent_answers(session: Session, task: Task, limit: int) -> list[tuple[Elicitation, Example]]:
    """The task's newest LLM answers (any status) with their examples, newest first."""
    rows = session.execute(
        select(Elicitation, Example)
        .join(Example, Example.id == Elicitation.example_id)
        .where(Elicitation.task_id == task.id, Elicitation.source == LLM_SOURCE)
        .order_by(Elicitation.created_at.desc(), Elicitation.id.desc())
        .limit(limit)
    )
    return [(answer, example) for answer, example in rows]
