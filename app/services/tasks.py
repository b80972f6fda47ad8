"""Tasks: creation, lookup, update, deletion, and the task's current LLM answer key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import ConflictError, InvalidInputError, NotFoundError, field_error
from app.llm.config import LLMConfig
from app.llm.policy import EndpointPolicy
from app.models import Calibration, Example, Task
from app.schemas.tasks import ActiveCalibrationSummary, TaskOut
from app.services.prior import validate_prior
from prompts import (
    Template,
    TemplateError,
    build_response_schema,
    default_template,
    prompt_version,
    template_from_text,
)


def get_task(session: Session, name: str) -> Task:
    task = session.scalar(select(Task).where(Task.name == name))
    if task is None:
        raise NotFoundError(f"no task named {name!r}")
    return task


def list_tasks(session: Session) -> list[Task]:
    return list(session.scalars(select(Task).order_by(Task.name)))


def task_reasoning(task: Task) -> bool:
    """Whether the task's LLM config asks for reasoning first."""
    return bool(task.llm and task.llm.get("reasoning"))


def task_template(task: Task) -> Template:
    """The task's own template, or the default template of its schema flavour."""
    if task.prompt_template:
        return template_from_text(task.prompt_template, name=f"{task.name}-custom")
    return default_template(reasoning=task_reasoning(task))


def task_prompt_version(task: Task) -> str:
    """The version keying the task's answers: its template and the answer schema's flavour."""
    return prompt_version(task_template(task), reasoning=task_reasoning(task))


def task_llm_config(task: Task) -> LLMConfig | None:
    return None if task.llm is None else LLMConfig.model_validate(task.llm)


def validate_template_text(text: str | None) -> None:
    if text is None:
        return
    try:
        template_from_text(text)
    except TemplateError as exc:
        raise InvalidInputError(str(exc), [field_error("prompt_template", str(exc))]) from exc


def validate_llm(
    labels: list[str], llm: dict[str, Any] | None, policy: EndpointPolicy | None
) -> None:
    """An LLM config the task can use: what the operator allows (``policy``; None: the
    process settings'), and no label clashing with the reasoning property when reasoning is on.
    Raises InvalidInputError naming the fields."""
    if llm is None:
        return
    policy = policy or get_settings().llm_policy
    config = LLMConfig.model_validate(llm)
    problems = [(v.field, v.message) for v in policy.violations(config, resolve=True)]
    if config.reasoning:
        try:
            build_response_schema(labels, reasoning=True)
        except ValueError as exc:
            problems.append(("llm.reasoning", str(exc)))
    if problems:
        details = [field_error(field, message) for field, message in problems]
        raise InvalidInputError(problems[0][1], details)


def create_task(
    session: Session, data: dict[str, Any], policy: EndpointPolicy | None = None
) -> Task:
    validate_template_text(data.get("prompt_template"))
    validate_llm(data["labels"], data.get("llm"), policy)
    data = data | {"prior": validate_prior(data["labels"], data.get("prior"))}
    if session.scalar(select(Task.id).where(Task.name == data["name"])) is not None:
        raise ConflictError(f"a task named {data['name']!r} already exists")
    task = Task(**data)
    session.add(task)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise ConflictError(f"a task named {data['name']!r} already exists") from exc
    return task


def update_task(
    session: Session, task: Task, changes: dict[str, Any], policy: EndpointPolicy | None = None
) -> Task:
    if "prompt_template" in changes:
        validate_template_text(changes["prompt_template"])
    if "llm" in changes:
        validate_llm(list(task.labels), changes["llm"], policy)
    if "prior" in changes:
        changes = changes | {"prior": validate_prior(list(task.labels), changes["prior"])}
    for field, value in changes.items():
        setattr(task, field, value)
    session.flush()
    return task


def delete_task(session: Session, task: Task) -> None:
    session.delete(task)
    session.flush()


def active_calibration(session: Session, task: Task) -> Calibration | None:
    return session.scalar(
        select(Calibration).where(Calibration.task_id == task.id, Calibration.is_active)
    )


def label_counts(session: Session, task: Task) -> dict[str, int]:
    rows = session.execute(
        select(Example.label, func.count())
        .where(Example.task_id == task.id, Example.label.is_not(None))
        .group_by(Example.label)
    ).all()
    counts = dict.fromkeys(task.labels, 0)
    counts.update({label: n for label, n in rows})
    return counts


def task_out(session: Session, task: Task) -> TaskOut:
    """The API view of a task, with data counts and its active calibration."""
    from app.services.predictions import distribution_counts

    label_count = label_counts(session, task)
    examples = session.scalar(
        select(func.count()).select_from(Example).where(Example.task_id == task.id)
    )
    active = active_calibration(session, task)
    summary = None
    if active is not None:
        ece_before, ece_after = active.held_out_ece()
        summary = ActiveCalibrationSummary(
            id=active.id,
            version=active.version,
            method=active.method,
            temperature=active.temperature,
            ece_before=ece_before,
            ece_after=ece_after,
        )
    return TaskOut(
        name=task.name,
        labels=list(task.labels),
        description=task.description,
        prompt_template=task.prompt_template,
        prompt_version=task_prompt_version(task),
        llm=task.llm,
        prior=task.prior,
        created_at=task.created_at,
        updated_at=task.updated_at,
        counts={
            "examples": examples,
            "labelled": sum(label_count.values()),
            "per_label": label_count,
            "distributions": distribution_counts(session, task),
        },
        active_calibration=summary,
    )
