"""`verbcal demo` (`make run`): a complete local deployment against the simulated LLM.

Migrates the database, starts the simulated LLM as a child process, creates the demo task from
the synthetic ticket dataset, elicits the missing answers, fits a temperature when the task has
no active calibration, creates a fresh admin key and serves the API and dashboard until Ctrl-C.
Everything is idempotent: a second run finds the task, its examples, answers and calibration and
only adds a new admin key. Whatever way the demo stops, the simulator it started is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO

import httpx
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import create_db_engine, create_session_factory, transaction
from app.llm.config import LLMConfig
from app.llm.simulator import SIMULATED_MODEL
from app.llm.synthetic import TICKET_LABELS, generate_examples
from app.migrate import upgrade_to_head
from app.models import FINISHED_JOB_STATUSES, Job, Task
from app.processes import log_tail, start_child, stop_process
from app.schemas.calibrations import FitRequest
from app.services import tasks as task_service
from app.services.elicitation import (
    active_job,
    current_answer_key,
    missing_work,
    start_elicitation,
)
from app.services.examples import import_examples
from app.services.fitting import fit_task
from app.services.keys import create_key

DEMO_TASK = "support-tickets"
DEMO_DESCRIPTION = (
    "Demo: synthetic support tickets answered by verbcal's simulated LLM "
    "(overconfident by T0 = 2, answers rounded to 0.05)."
)
SIMULATOR_T0 = 2.0
SIMULATOR_ROUNDING = 0.05
SIMULATOR_START_TIMEOUT_S = 30.0
_JOB_POLL_S = 0.25


class DemoError(Exception):
    """A precondition of the demo failed; the message says what to do."""


def _say(message: str = "", **style) -> None:
    typer.secho(message, err=True, **style)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def simulator_process(host: str, port: int) -> Iterator[tuple[str, str]]:
    """Run ``verbcal simulate-llm`` as a child process; yields (base URL, model id).

    The child is terminated (then killed) on exit, whatever ended the block.
    """
    if _port_in_use(host, port):
        raise DemoError(
            f"port {port} is taken, so the simulated LLM cannot start there: "
            "stop what uses it or pass --llm-port"
        )
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "simulate-llm",
        "--host",
        host,
        "--port",
        str(port),
        "--t0",
        str(SIMULATOR_T0),
        "--rounding",
        str(SIMULATOR_ROUNDING),
    ]
    base_url = f"http://{host}:{port}/v1"
    with tempfile.TemporaryFile() as log:
        process = start_child(command, log)
        try:
            model = _wait_for_simulator(process, base_url, log)
            yield base_url, model
        finally:
            stop_process(process)


def _wait_for_simulator(process: subprocess.Popen, base_url: str, log: IO[bytes]) -> str:
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(
                f"the simulated LLM exited with code {process.returncode}:\n{log_tail(log, 15)}"
            )
        try:
            response = httpx.get(f"{base_url}/models", timeout=1.0)
            if response.status_code == 200:
                return response.json()["data"][0]["id"]
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise DemoError(f"the simulated LLM did not answer at {base_url} within the timeout")


def ensure_demo_task(session: Session, base_url: str, model: str) -> Task:
    """The demo task, created if absent and re-pointed at this run's simulator if it moved."""
    llm = LLMConfig(base_url=base_url, model=model).model_dump(mode="json")
    task = session.scalar(select(Task).where(Task.name == DEMO_TASK))
    if task is None:
        task = task_service.create_task(
            session,
            {
                "name": DEMO_TASK,
                "labels": list(TICKET_LABELS),
                "description": DEMO_DESCRIPTION,
                "llm": llm,
            },
        )
        _say(f"created task {DEMO_TASK!r}")
        return task
    current = task.llm or {}
    # A task the user re-pointed at a real LLM is left alone; only the simulator's URL follows
    # --llm-port (answers are keyed by URL, so moving it means eliciting again).
    if current.get("model") == SIMULATED_MODEL and current.get("base_url") != base_url:
        task_service.update_task(session, task, {"llm": {**current, "base_url": base_url}})
        _say(f"task {DEMO_TASK!r} now asks the simulator at {base_url}")
    else:
        _say(f"task {DEMO_TASK!r} exists")
    return task


def _job_progress(factory: sessionmaker[Session], job_id: str) -> tuple[str, int, int, int]:
    with transaction(factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status, job.done, job.failed, job.total


def elicit_missing(factory: sessionmaker[Session], settings: Settings) -> None:
    """Ask the LLM about every example without an answer, with a progress bar.

    The worker runs in a thread so that Ctrl-C stops it between batches: its answers so far are
    kept and the job goes back to the queue, where the next run resumes it.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app.jobs.worker import Worker

    with transaction(factory) as session:
        task = task_service.get_task(session, DEMO_TASK)
        job = active_job(session, task)
        if job is None:
            key = current_answer_key(task)
            if key is None or not missing_work(session, task, key):
                _say("every example already has an LLM answer")
                return
            job = start_elicitation(session, task)
        job_id, status, total = job.id, job.status, job.total
    stop = threading.Event()
    worker = Worker(factory, settings, worker_id=f"demo:{os.getpid()}")
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="demo-worker")
    done = failed = 0
    thread.start()
    columns = (
        TextColumn("eliciting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
    )
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            bar = progress.add_task("elicit", total=total or None, failed=0)
            while status not in FINISHED_JOB_STATUSES:
                time.sleep(_JOB_POLL_S)
                status, done, failed, total = _job_progress(factory, job_id)
                progress.update(bar, completed=done, total=total or None, failed=failed)
    finally:
        stop.set()
        thread.join()
    _say(f"elicitation {status}: {done}/{total} answered, {failed} failed")


def fit_if_uncalibrated(session: Session, settings: Settings) -> None:
    task = task_service.get_task(session, DEMO_TASK)
    active = task_service.active_calibration(session, task)
    if active is None:
        active = fit_task(session, task, FitRequest(), settings)
        verb = "fitted"
    else:
        verb = "active"
    before, after = active.held_out_ece()
    ece = f"held-out ECE {before:.3f} → {after:.3f}" if before is not None else ""
    _say(f"{verb} calibration v{active.version}: temperature {active.temperature:.3f}  {ece}")


def prepare_demo(settings: Settings, llm_url: str, model: str, n_examples: int, seed: int) -> str:
    """Task, examples, answers and calibration in place; returns a fresh admin key."""
    engine = create_db_engine(settings.database_url)
    factory = create_session_factory(engine)
    try:
        with transaction(factory) as session:
            task = ensure_demo_task(session, llm_url, model)
            rows = [
                {"id": example.id, "text": example.text, "label": example.label}
                for example in generate_examples(n_examples, seed)
            ]
            result = import_examples(session, task, rows, settings)
        _say(
            f"examples: {result.inserted} added, {result.updated} updated, "
            f"{result.unchanged} already there"
        )
        elicit_missing(factory, settings)
        with transaction(factory) as session:
            fit_if_uncalibrated(session, settings)
        with transaction(factory) as session:
            _, secret = create_key(session, "admin", name="demo")
        return secret
    finally:
        engine.dispose()


def _print_banner(host: str, port: int, admin_key: str) -> None:
    base = f"http://{host}:{port}"
    _say()
    _say(f"  dashboard  {base}/admin", bold=True)
    _say(f"  API docs   {base}/docs")
    _say(f"  admin key  {admin_key}", bold=True)
    _say("  (a new key each run; it is shown only once)", dim=True)
    _say()
    _say("  try:")
    _say(
        f"    curl -s {base}/calibrate -H 'Authorization: Bearer {admin_key}' "
        "-H 'Content-Type: application/json' \\\n"
        f'      -d \'{{"task": "{DEMO_TASK}", "text": "my invoice shows a double charge"}}\''
    )
    _say()
    _say("  Ctrl-C stops the server and the simulated LLM.")
    _say()


def _stop_on_sigterm(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def demo_settings(database_url: str | None) -> Settings:
    overrides: dict = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if "VERBCAL_LOG_JSON" not in os.environ:
        overrides["log_json"] = False  # a person reads this terminal
    return Settings(**overrides)


def run_demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    llm_port: int = 8010,
    database_url: str | None = None,
    n_examples: int = 600,
    seed: int = 0,
) -> None:
    """Run the whole demo and serve until Ctrl-C (SIGINT) or SIGTERM. Raises DemoError."""
    import uvicorn

    from app.main import create_app
    from app.observability import configure_logging

    settings = demo_settings(database_url)
    if _port_in_use(host, port):
        raise DemoError(f"port {port} is taken: stop what uses it or pass --port")
    # SIGTERM unwinds like Ctrl-C, so the simulator is stopped by the finally blocks. SIGINT is
    # set explicitly because a shell starts background jobs with it ignored.
    previous_sigterm = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _say(f"migrating {settings.database_url}")
        upgrade_to_head(settings.database_url)
        with simulator_process(host, llm_port) as (llm_url, model):
            _say(f"simulated LLM at {llm_url} (model {model}, T0={SIMULATOR_T0:g})")
            admin_key = prepare_demo(settings, llm_url, model, n_examples, seed)
            configure_logging(settings)
            app = create_app(settings, start_worker=True)
            _print_banner(host, port, admin_key)
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_config=None,
                log_level=settings.log_level.lower(),
                access_log=False,
            )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        signal.signal(signal.SIGINT, previous_sigint)
        _say("demo stopped")
