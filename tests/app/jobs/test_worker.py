"""The job worker against the simulated LLM served over real HTTP: progress, cancel, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db import create_db_engine, create_session_factory, transaction
from app.jobs.worker import EmbeddedWorker, Worker
from app.llm.simulator import SimulatorSettings, running_simulator
from app.llm.synthetic import TICKET_LABELS, generate_examples
from app.models import Base, Elicitation, Example, Job, Task
from app.services.elicitation import start_elicitation
from app.services.examples import text_hash

REPO_ROOT = Path(__file__).resolve().parents[3]


class Simulator:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def requests(self) -> int:
        root = self.base_url.removesuffix("/v1")
        return httpx.get(f"{root}/_sim/stats", timeout=5).json()["requests"]


@pytest.fixture
def simulator_options() -> dict:
    """Simulator settings; a test overrides them with @pytest.mark.parametrize (indirect)."""
    return {}


@pytest.fixture
def simulator(simulator_options) -> Iterator[Simulator]:
    with running_simulator(SimulatorSettings(**simulator_options)) as base_url:
        yield Simulator(base_url)


def simulator_with(**options):
    return pytest.mark.parametrize("simulator_options", [options], ids=["sim"])


def llm_config(base_url: str, **overrides) -> dict:
    config = {
        "base_url": base_url,
        "model": "verbcal-simulated-llm",
        "samples": 2,
        "concurrency": 4,
        "max_retries": 0,
    }
    return config | overrides


def create_task(client, base_url: str, n: int, name: str = "tickets", **llm) -> str:
    created = client.post(
        "/tasks",
        json={"name": name, "labels": list(TICKET_LABELS), "llm": llm_config(base_url, **llm)},
    )
    assert created.status_code == 201, created.text
    rows = [{"id": e.id, "text": e.text, "label": e.label} for e in generate_examples(n, seed=1)]
    added = client.post(f"/tasks/{name}/examples", json={"examples": rows})
    assert added.status_code == 200, added.text
    return name


def answers(session_factory, status: str | None = None) -> list[tuple[int, int]]:
    with transaction(session_factory) as session:
        query = select(Elicitation.example_id, Elicitation.sample_index)
        if status is not None:
            query = query.where(Elicitation.status == status)
        return [tuple(row) for row in session.execute(query)]


def test_a_job_runs_to_completion(client, settings, session_factory, simulator):
    create_task(client, simulator.base_url, n=12, samples=3)
    started = client.post("/tasks/tickets/elicitations")
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["status"], job["total"], job["done"], job["task"]) == ("queued", 12, 0, "tickets")

    assert Worker(session_factory, settings).run_until_idle() == 1

    job = client.get(f"/jobs/{job['id']}").json()
    assert (job["status"], job["total"], job["done"], job["failed"]) == ("succeeded", 12, 12, 0)
    assert job["errors"] == [] and job["attempts"] == 1
    assert job["started_at"] is not None and job["finished_at"] is not None
    stored = answers(session_factory, "ok")
    assert len(stored) == len(set(stored)) == 12 * 3
    assert {index for _, index in stored} == {0, 1, 2}
    assert simulator.requests() == 12 * 3
    assert client.get("/tasks/tickets").json()["counts"]["distributions"]["elicited"] == 12


@simulator_with(delay_s=0.02)
def test_progress_is_visible_while_the_job_runs(client, settings, session_factory, simulator):
    create_task(client, simulator.base_url, n=10, samples=1)
    job_id = client.post("/tasks/tickets/elicitations").json()["id"]
    seen = []

    def observe(observed_id, done, failed, total):
        seen.append((done, total, client.get(f"/jobs/{observed_id}").json()))

    settings = settings.model_copy(update={"job_batch_size": 3})
    Worker(session_factory, settings, on_progress=observe).run_until_idle()

    assert [done for done, _, _ in seen] == [3, 6, 9, 10]
    for done, total, shown in seen[:-1]:
        assert shown["status"] == "running"
        assert (shown["done"], shown["total"]) == (done, total) == (done, 10)
    assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_cancel_a_queued_job(client, settings, session_factory, simulator):
    create_task(client, simulator.base_url, n=5)
    job_id = client.post("/tasks/tickets/elicitations").json()["id"]
    cancelled = client.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert Worker(session_factory, settings).run_until_idle() == 0
    assert simulator.requests() == 0
    again = client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["details"]["status"] == "cancelled"


def test_cancel_a_running_job_stops_at_the_next_batch(client, settings, session_factory, simulator):
    create_task(client, simulator.base_url, n=10, samples=1)
    job_id = client.post("/tasks/tickets/elicitations").json()["id"]

    def cancel_after_first_batch(observed_id, done, failed, total):
        if done == 4:
            response = client.post(f"/jobs/{observed_id}/cancel")
            assert response.json()["status"] == "running"
            assert response.json()["cancel_requested"] is True

    settings = settings.model_copy(update={"job_batch_size": 4})
    Worker(session_factory, settings, on_progress=cancel_after_first_batch).run_until_idle()

    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["done"], job["total"]) == ("cancelled", 4, 10)
    assert len(answers(session_factory)) == 4
    assert simulator.requests() == 4


@simulator_with(rate_500=0.2, rate_malformed=0.2, fault_seed=3)
def test_failures_are_recorded_and_a_rerun_asks_only_about_them(
    client, settings, session_factory, simulator
):
    create_task(client, simulator.base_url, n=15, samples=2)
    first_id = client.post("/tasks/tickets/elicitations").json()["id"]
    Worker(session_factory, settings).run_until_idle()
    first = client.get(f"/jobs/{first_id}").json()
    assert first["status"] == "succeeded"
    assert (first["done"], first["total"]) == (15, 15)
    failed_samples = answers(session_factory, "failed")
    failed_examples = {example_id for example_id, _ in failed_samples}
    assert first["failed"] == len(failed_examples) > 0
    assert len(first["errors"]) == first["failed"]
    kinds = {error["kind"] for error in first["errors"]}
    assert kinds <= {"http_error", "unparseable"} and kinds
    for error in first["errors"]:
        assert error["example_id"] and error["message"] and error["sample_index"] in (0, 1)
    assert any(e["raw_excerpt"] for e in first["errors"] if e["kind"] == "unparseable")
    assert simulator.requests() == 30

    for _ in range(10):  # each re-run asks only about what is still missing
        missing = answers(session_factory, "failed")
        if not missing:
            break
        before = simulator.requests()
        rerun = client.post("/tasks/tickets/elicitations").json()
        assert rerun["total"] == len({example_id for example_id, _ in missing})
        Worker(session_factory, settings).run_until_idle()
        assert simulator.requests() - before == len(missing)
    assert answers(session_factory, "failed") == []
    stored = answers(session_factory)
    assert len(stored) == len(set(stored)) == 30
    nothing_left = client.post("/tasks/tickets/elicitations").json()
    assert (nothing_left["status"], nothing_left["total"]) == ("succeeded", 0)


def test_the_embedded_worker_runs_jobs_in_the_background(
    client, settings, session_factory, simulator
):
    create_task(client, simulator.base_url, n=4, samples=1)
    job_id = client.post("/tasks/tickets/elicitations").json()["id"]
    embedded = EmbeddedWorker(session_factory, settings.model_copy(update={"worker_poll_s": 0.05}))
    embedded.start()
    try:
        deadline = time.monotonic() + 30
        while client.get(f"/jobs/{job_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the embedded worker did not finish the job"
            time.sleep(0.05)
    finally:
        embedded.stop()
    assert len(answers(session_factory)) == 4


# ---------------------------------------------------------------- PostgreSQL only


@pytest.fixture
def pg_url(postgres_database) -> Iterator[str]:
    yield postgres_database
    engine = create_db_engine(postgres_database)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def seed_task(session_factory, base_url: str, name: str, n: int, samples: int) -> None:
    with transaction(session_factory) as session:
        task = Task(name=name, labels=list(TICKET_LABELS), llm=llm_config(base_url, samples=samples,
                                                                       concurrency=2))  # fmt: skip
        session.add(task)
        session.flush()
        for example in generate_examples(n, seed=2):
            session.add(
                Example(
                    task_id=task.id,
                    external_id=example.id,
                    text=example.text,
                    text_hash=text_hash(example.text),
                    label=example.label,
                )
            )
        session.flush()
        start_elicitation(session, task)


def start_worker_process(
    database_url: str, stderr: int = subprocess.DEVNULL, **extra_env: str
) -> subprocess.Popen:
    """``python -m app.jobs.worker`` on ``database_url``: polling every 0.1 s, batches of 4."""
    env = os.environ | {
        "VERBCAL_DATABASE_URL": database_url,
        "VERBCAL_WORKER_POLL_S": "0.1",
        "VERBCAL_JOB_BATCH_SIZE": "4",
        "VERBCAL_LOG_JSON": "false",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.jobs.worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


def job_row(session_factory) -> Job:
    with transaction(session_factory) as session:
        return session.scalars(select(Job)).one()


@pytest.mark.postgres
@pytest.mark.slow
@simulator_with(delay_s=0.15)
def test_a_killed_workers_job_is_resumed_without_duplicates(pg_url, simulator):
    engine = create_db_engine(pg_url)
    session_factory = create_session_factory(engine)
    examples, samples = 20, 2
    seed_task(session_factory, simulator.base_url, "tickets", examples, samples)
    worker = start_worker_process(pg_url, stderr=subprocess.PIPE, VERBCAL_JOB_LEASE_S="2")
    try:
        deadline = time.monotonic() + 60
        while True:
            job = job_row(session_factory)
            if 0 < job.done < job.total:
                break
            assert worker.poll() is None, worker.stderr.read().decode()
            assert job.status in ("queued", "running") and time.monotonic() < deadline
            time.sleep(0.02)
        worker.kill()
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        worker.stderr.close()
    killed = job_row(session_factory)
    assert killed.status == "running" and killed.attempts == 1

    settings = Settings(database_url=pg_url, job_lease_s=2, job_batch_size=4)
    second = Worker(session_factory, settings, worker_id="second")
    assert second.claim_next_job() is None  # the dead worker's lease has not lapsed yet
    deadline = time.monotonic() + 15
    while (job_id := second.claim_next_job()) is None:
        assert time.monotonic() < deadline, "the abandoned job was never reclaimed"
        time.sleep(0.2)
    second.run_job(job_id)

    job = job_row(session_factory)
    assert (job.status, job.worker_id, job.attempts) == ("succeeded", "second", 2)
    assert (job.done, job.total, job.failed) == (examples, examples, 0)
    stored = answers(session_factory)
    assert len(stored) == len(set(stored)) == examples * samples
    assert answers(session_factory, "failed") == []
    assert simulator.requests() < 2 * examples * samples
    with transaction(session_factory) as session:
        per_example = session.execute(
            select(Elicitation.example_id, func.count()).group_by(Elicitation.example_id)
        ).all()
    assert len(per_example) == examples and {n for _, n in per_example} == {samples}
    engine.dispose()


@pytest.mark.postgres
@simulator_with(delay_s=0.05)
def test_concurrent_workers_each_claim_a_different_job(pg_url, simulator):
    engine = create_db_engine(pg_url)
    session_factory = create_session_factory(engine)
    seed_task(session_factory, simulator.base_url, "first", 6, 1)
    seed_task(session_factory, simulator.base_url, "second", 6, 1)
    settings = Settings(database_url=pg_url, job_batch_size=2)
    workers = [Worker(session_factory, settings, worker_id=f"w{i}") for i in range(2)]
    barrier = threading.Barrier(len(workers))
    claimed: dict[str, str | None] = {}

    def claim_and_run(worker: Worker) -> None:
        barrier.wait()
        job_id = claimed[worker.worker_id] = worker.claim_next_job()
        if job_id is not None:
            worker.run_job(job_id)

    threads = [threading.Thread(target=claim_and_run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert None not in claimed.values()
    assert len(set(claimed.values())) == 2
    with transaction(session_factory) as session:
        jobs = {job.id: job for job in session.scalars(select(Job))}
    for worker_id, job_id in claimed.items():
        assert (jobs[job_id].status, jobs[job_id].worker_id) == ("succeeded", worker_id)
        assert jobs[job_id].attempts == 1
    stored = answers(session_factory)
    assert len(stored) == len(set(stored)) == 12
    engine.dispose()


@simulator_with(delay_s=0.15)
def test_sigterm_puts_the_running_job_back_in_the_queue(
    client, settings, session_factory, simulator
):
    create_task(client, simulator.base_url, n=20, samples=1, concurrency=2)
    job_id = client.post("/tasks/tickets/elicitations").json()["id"]
    worker = start_worker_process(settings.database_url)
    try:
        deadline = time.monotonic() + 60
        while client.get(f"/jobs/{job_id}").json()["done"] == 0:
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    released = client.get(f"/jobs/{job_id}").json()
    assert released["status"] == "queued" and 0 < released["done"] < 20
    assert len(answers(session_factory)) == released["done"]

    Worker(session_factory, settings).run_until_idle()
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["done"], job["total"], job["attempts"]) == ("succeeded", 20, 20, 2)
    assert simulator.requests() == 20
