"""Elicitation service: what is missing under the current answer key, upserts, job creation."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.errors import ConflictError, TaskNotReadyError
from app.llm.client import Elicitation as ElicitationResult
from app.llm.client import SampleRecord
from app.llm.errors import LLMError
from app.models import Elicitation, Example, Job, Task
from app.services.elicitation import (
    current_answer_key,
    missing_work,
    start_elicitation,
    store_answers,
)
from app.services.examples import text_hash

LABELS = ["billing", "technical", "account", "other"]
LLM = {"base_url": "http://llm.invalid/v1", "model": "m", "samples": 3}


def add_task(session, name="t", llm=LLM, texts=("refund", "crash", "login")) -> Task:
    task = Task(name=name, labels=LABELS, llm=llm)
    session.add(task)
    session.flush()
    for text in texts:
        session.add(Example(task_id=task.id, text=text, text_hash=text_hash(text), label="other"))
    session.flush()
    return task


def sample(index: int, ok: bool = True) -> SampleRecord:
    if ok:
        return SampleRecord(
            index=index, seed=index, raw_text="{}", parse_status="ok",
            probabilities=[0.7, 0.1, 0.1, 0.1],
        )  # fmt: skip
    error = LLMError("unparseable", "no JSON", raw_excerpt="x")
    return SampleRecord(index=index, seed=index, raw_text="x", parse_status="failed", error=error)


def result(*samples: SampleRecord) -> ElicitationResult:
    parsed = [s for s in samples if s.probabilities]
    status = "ok" if parsed else "failed"
    return ElicitationResult(parsed[0].probabilities if parsed else None, status, list(samples),
                             None, 1.0)  # fmt: skip


def examples_of(session, task) -> list[Example]:
    return list(session.scalars(select(Example).where(Example.task_id == task.id)))


def test_missing_work_lists_every_sample_index_at_first(session_factory):
    with transaction(session_factory) as session:
        task = add_task(session)
        work = missing_work(session, task, current_answer_key(task))
        assert [(ex.text, indices) for ex, indices in work] == [
            ("refund", [0, 1, 2]),
            ("crash", [0, 1, 2]),
            ("login", [0, 1, 2]),
        ]


def test_stored_answers_are_no_longer_missing_but_failed_ones_are(session_factory):
    with transaction(session_factory) as session:
        task = add_task(session)
        key = current_answer_key(task)
        refund, crash, _login = examples_of(session, task)
        store_answers(session, task, refund, key, result(sample(0), sample(1), sample(2)), "j1")
        store_answers(session, task, crash, key, result(sample(0), sample(1, ok=False)), "j1")
        work = missing_work(session, task, key)
        assert [(ex.text, indices) for ex, indices in work] == [
            ("crash", [1, 2]),
            ("login", [0, 1, 2]),
        ]
        failed = session.scalar(select(Elicitation).where(Elicitation.status == "failed"))
        assert failed.error["kind"] == "unparseable"
        assert failed.probabilities is None


def test_a_failed_answer_is_replaced_and_a_usable_one_is_never_duplicated(session_factory):
    with transaction(session_factory) as session:
        task = add_task(session)
        key = current_answer_key(task)
        refund = examples_of(session, task)[0]
        store_answers(session, task, refund, key, result(sample(0, ok=False)), "j1")
        store_answers(session, task, refund, key, result(sample(0)), "j2")
        # A later failure (or a racing worker's answer) never replaces a usable answer.
        store_answers(session, task, refund, key, result(sample(0, ok=False)), "j3")
        store_answers(session, task, refund, key, result(sample(0)), "j4")
        rows = list(session.scalars(select(Elicitation).where(Elicitation.example_id == refund.id)))
        assert len(rows) == 1
        assert (rows[0].status, rows[0].job_id, rows[0].error) == ("ok", "j2", None)
        assert rows[0].probabilities == [0.7, 0.1, 0.1, 0.1]


def test_a_new_answer_key_makes_everything_missing_again(session_factory):
    with transaction(session_factory) as session:
        task = add_task(session)
        key = current_answer_key(task)
        for example in examples_of(session, task):
            store_answers(session, task, example, key, result(*map(sample, range(3))), "j")
        assert missing_work(session, task, key) == []
        task.llm = {**LLM, "temperature": 0.3}
        new_key = current_answer_key(task)
        assert new_key != key
        assert len(missing_work(session, task, new_key)) == 3
        task.llm = {**LLM, "samples": 4}
        assert [i for _, i in missing_work(session, task, current_answer_key(task))] == [[3]] * 3


def test_start_elicitation_counts_examples_with_something_missing(session_factory, settings):
    with transaction(session_factory) as session:
        task = add_task(session)
        refund = examples_of(session, task)[0]
        key = current_answer_key(task)
        store_answers(session, task, refund, key, result(*map(sample, range(3))), "j")
        job = start_elicitation(session, task)
        assert (job.kind, job.status, job.total, job.done, job.failed) == (
            "elicitation", "queued", 2, 0, 0,
        )  # fmt: skip
        assert job.params["task"] == "t"


def test_start_elicitation_conflicts_with_an_active_job(session_factory, settings):
    with transaction(session_factory) as session:
        task = add_task(session)
        first = start_elicitation(session, task)
        with pytest.raises(ConflictError) as raised:
            start_elicitation(session, task)
        assert raised.value.details["job_id"] == first.id
        first.status = "running"
        with pytest.raises(ConflictError):
            start_elicitation(session, task)
        first.status = "succeeded"
        assert start_elicitation(session, task).id != first.id


def test_start_elicitation_needs_an_llm_config(session_factory, settings):
    with transaction(session_factory) as session:
        task = add_task(session, llm=None)
        with pytest.raises(TaskNotReadyError):
            start_elicitation(session, task)
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_nothing_missing_makes_a_job_that_has_already_succeeded(session_factory, settings):
    with transaction(session_factory) as session:
        task = add_task(session, texts=())
        job = start_elicitation(session, task)
        assert (job.status, job.total, job.done) == ("succeeded", 0, 0)
        assert job.finished_at is not None
