"""Checking a task's LLM server (``POST /tasks/{name}/llm/check``, ``verbcal llm check``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInputError, TaskNotReadyError, field_error
from app.llm.check import ServerCheck, check_server
from app.llm.config import LLMConfig
from app.llm.policy import EndpointPolicy
from app.models import Example
from app.services.tasks import get_task, task_llm_config, task_template
from prompts import Template

PROBE_TEXT_CHARS = 600
FALLBACK_PROBE_TEXT = "A short text to check that the server answers in the expected format."


@dataclass(frozen=True)
class CheckPlan:
    """What a check needs from the database; the check itself makes no database call."""

    config: LLMConfig
    template: Template
    labels: list[str]
    text: str


def plan_check(session: Session, task_name: str, policy: EndpointPolicy) -> CheckPlan:
    """The task's LLM config and prompt, and a probe text: its first example, cut short.

    Raises NotFoundError for an unknown task, TaskNotReadyError when it has no LLM config, and
    InvalidInputError when the operator's ``policy`` does not allow its config (nothing is sent
    then).
    """
    task = get_task(session, task_name)
    config = task_llm_config(task)
    if config is None:
        raise TaskNotReadyError(
            f"task {task.name!r} has no LLM config: set `llm` with PATCH /tasks/{task.name}",
            [field_error("llm", "required to check the LLM server")],
        )
    violations = policy.violations(config)
    if violations:
        details = [field_error(v.field, v.message) for v in violations]
        raise InvalidInputError(violations[0].message, details)
    text = session.scalar(
        select(Example.text).where(Example.task_id == task.id).order_by(Example.id).limit(1)
    )
    probe_text = (text or FALLBACK_PROBE_TEXT)[:PROBE_TEXT_CHARS]
    return CheckPlan(config, task_template(task), list(task.labels), probe_text)


async def run_check(plan: CheckPlan) -> ServerCheck:
    """Probe the server (a few real requests; see ``app.llm.check``)."""
    return await check_server(plan.config, plan.template, plan.labels, plan.text)
