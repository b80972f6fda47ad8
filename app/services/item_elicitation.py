"""The raw distribution of one /calibrate item: given probabilities, validated against the
task's labels, or the task's LLM asked about a text (LLM failures become typed 502/504 errors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.config import Settings
from app.errors import (
    InvalidInputError,
    ServiceError,
    TaskNotReadyError,
    UpstreamLLMError,
    field_error,
)
from app.llm.client import LLMClient
from app.llm.errors import LLMError
from app.models import Task
from app.schemas.calibrate import (
    CalibrateItem,
    LLMInfo,
)
from app.services.examples import text_hash
from app.services.predictions import validate_distribution
from app.services.tasks import task_llm_config, task_template
from app.services.uploads import RowErrors


@dataclass
class Elicited:
    raw: list[float]
    llm: LLMInfo | None
    text_hash: str | None


def from_probabilities(task: Task, probabilities: dict[str, float], row: int | None) -> list[float]:
    errors = RowErrors("item")
    distribution = validate_distribution(probabilities, list(task.labels), errors, row or 0)
    if distribution is None:
        details = errors.errors
        if row is None:
            for entry in details:
                entry.pop("row", None)
        raise InvalidInputError(f"probabilities: {details[0]['message']}", details)
    return distribution


def _check_text(text: str, settings: Settings) -> None:
    if len(text) > settings.max_text_length:
        raise InvalidInputError(
            f"text longer than {settings.max_text_length} characters",
            [field_error("text", f"at most {settings.max_text_length} characters")],
        )


def _llm_client(task: Task, settings: Settings) -> LLMClient:
    config = task_llm_config(task)
    if config is None:
        raise TaskNotReadyError(
            f"task {task.name!r} has no LLM configured; send `probabilities` instead of `text`",
            [field_error("text", "the task has no llm config")],
        )
    return LLMClient(config, task_template(task), endpoint_policy=settings.llm_policy)


LLMCallRecorder = Callable[[str, float], None]
_LLM_OUTCOMES = {
    "timeout": "timeout",
    "rate_limited": "rate_limited",
    "unparseable": "parse_failed",
}


def _record_llm_calls(elicitation, record: LLMCallRecorder | None) -> None:
    if record is None:
        return
    for sample in elicitation.samples:
        if sample.probabilities is not None:
            outcome = "ok"
        else:
            kind = sample.error.kind if sample.error is not None else "unparseable"
            outcome = _LLM_OUTCOMES.get(kind, "error")
        record(outcome, (sample.latency_ms or 0.0) / 1000)


def elicited_result(
    elicitation, text: str, settings: Settings, record: LLMCallRecorder | None = None
) -> Elicited:
    """The LLM's distribution for ``text``, or the typed failure as a 502/504 error."""
    _record_llm_calls(elicitation, record)
    if elicitation.probabilities is None:
        raise UpstreamLLMError(
            elicitation.error or LLMError("unparseable", "the LLM gave no usable distribution")
        )
    samples = elicitation.samples
    parsed = [s for s in samples if s.probabilities is not None]
    repairs = sorted({r for s in parsed for r in (s.repairs or [])})
    reasoning = elicitation.reasoning
    return Elicited(
        raw=list(elicitation.probabilities),
        llm=LLMInfo(
            model=samples[0].model if samples else None,
            latency_ms=elicitation.latency_ms,
            parse_status=elicitation.status,
            samples=len(samples),
            repairs=repairs,
            reasoning=None if reasoning is None else reasoning[: settings.reasoning_max_chars],
            answer_agrees=elicitation.answer_agrees,
        ),
        text_hash=text_hash(text),
    )


async def elicit_item(
    task: Task,
    item: CalibrateItem,
    settings: Settings,
    record_llm_call: LLMCallRecorder | None = None,
    row: int | None = None,
) -> Elicited:
    """The raw distribution of an item: validated probabilities, or the LLM's answer.

    No database access, so it runs on the event loop; the LLM call is awaited, not blocking
    a thread for its latency.
    """
    if item.probabilities is not None:
        return Elicited(from_probabilities(task, item.probabilities, row), None, None)
    _check_text(item.text, settings)
    answer = await _llm_client(task, settings).elicit(item.text, list(task.labels))
    return elicited_result(answer, item.text, settings, record_llm_call)


async def elicit_batch(
    task: Task,
    items: Sequence[CalibrateItem],
    settings: Settings,
    record_llm_call: LLMCallRecorder | None = None,
) -> list[Elicited | ServiceError]:
    """Each item's raw distribution or its error; texts go to the LLM concurrently."""
    if len(items) > settings.max_batch_size:
        raise InvalidInputError(
            f"too many items: {len(items)} > {settings.max_batch_size}",
            [field_error("items", f"at most {settings.max_batch_size} items per batch")],
        )
    outcomes: list[Elicited | ServiceError | None] = [None] * len(items)
    text_items = []
    for index, item in enumerate(items):
        try:
            if item.probabilities is not None:
                outcomes[index] = await elicit_item(task, item, settings, row=index)
            else:
                _check_text(item.text, settings)
                text_items.append(index)
        except ServiceError as exc:
            outcomes[index] = exc
    if text_items:
        try:
            client = _llm_client(task, settings)
        except ServiceError as exc:
            for index in text_items:
                outcomes[index] = exc
        else:
            texts = [items[i].text for i in text_items]
            answers = await client.elicit_many(texts, list(task.labels))
            for index, answer in zip(text_items, answers, strict=True):
                try:
                    outcomes[index] = elicited_result(
                        answer, items[index].text, settings, record_llm_call
                    )
                except ServiceError as exc:
                    outcomes[index] = exc
    return outcomes
