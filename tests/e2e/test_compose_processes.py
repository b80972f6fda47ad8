"""The compose deployment, without Docker: the processes docker-compose.yml starts, run locally.

migrate, then the simulated LLM, the API and two workers run as local processes with the
commands and environment of docker-compose.yml (hosts and ports replaced by local ones, the
database by a fresh one on the local PostgreSQL), and the demo is driven over HTTP.
"""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.llm.synthetic import TICKET_LABELS, generate_examples
from tests.e2e.processes import (
    REPO_ROOT,
    clean_environment,
    free_port,
    processes,
    verbcal_command,
)
from tests.e2e.test_compose import compose

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SIMULATOR_T0 = 2.0
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` substitution."""

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if variables.get(name):
            return variables[name]
        if operator == "?":
            raise AssertionError(f"compose would refuse to start: {argument}")
        return argument if operator == "-" else ""

    return _VARIABLE.sub(substitute, value)


def service_environment(name: str, database_url: str) -> dict[str, str]:
    variables = env_example()
    environment = {
        key: interpolate(str(value), variables)
        for key, value in (compose()["services"][name].get("environment") or {}).items()
    }
    if "VERBCAL_DATABASE_URL" in environment:
        in_compose = make_url(environment["VERBCAL_DATABASE_URL"])
        assert in_compose.password == variables["POSTGRES_PASSWORD"]
        assert in_compose.host == "postgres"
        environment["VERBCAL_DATABASE_URL"] = database_url
    return environment


def local_command(name: str, port: int | None = None) -> list[str]:
    """The service's compose command, bound to localhost (and to ``port`` if given)."""
    argv = list(compose()["services"][name]["command"])
    if "--host" in argv:
        argv[argv.index("--host") + 1] = "127.0.0.1"
    if port is not None:
        argv[argv.index("--port") + 1] = str(port)
    return verbcal_command(argv)


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").raise_for_status().json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_the_compose_processes_run_the_demo(tmp_path, fresh_postgres_database):
    database_url = fresh_postgres_database
    api_port, llm_port = free_port(), free_port()
    with processes(tmp_path) as started:
        migrate = subprocess.run(
            local_command("migrate"),
            env=clean_environment(service_environment("migrate", database_url)),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrate.returncode == 0, migrate.stderr

        started.start(
            "llm-simulator",
            local_command("llm-simulator", llm_port),
            clean_environment(service_environment("llm-simulator", database_url)),
        )
        api_env = clean_environment(service_environment("api", database_url))
        started.start("api", local_command("api", api_port), api_env)
        worker_env = clean_environment(service_environment("worker", database_url))
        workers = [
            started.start(f"worker-{i}", local_command("worker"), worker_env) for i in (1, 2)
        ]
        base_url = f"http://127.0.0.1:{api_port}"
        llm_url = f"http://127.0.0.1:{llm_port}/v1"
        started.wait_for_http("llm-simulator", f"{llm_url}/models")
        started.wait_for_http("api", f"{base_url}/readyz")

        keys = subprocess.run(
            [*verbcal_command(["verbcal", "keys", "create", "--role", "admin"])],
            env=api_env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert keys.returncode == 0, keys.stderr
        admin_key = keys.stdout.strip()

        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            model = httpx.get(f"{llm_url}/models").json()["data"][0]["id"]
            client.post(
                "/tasks",
                json={
                    "name": "support-tickets",
                    "labels": list(TICKET_LABELS),
                    "llm": {"base_url": llm_url, "model": model},
                },
            ).raise_for_status()
            examples = [
                {"id": ex.id, "text": ex.text, "label": ex.label}
                for ex in generate_examples(240, seed=1)
            ]
            imported = client.post("/tasks/support-tickets/examples", json={"examples": examples})
            assert imported.raise_for_status().json()["inserted"] == 240

            job = client.post("/tasks/support-tickets/elicitations").raise_for_status().json()
            job = wait_for_job(client, job["id"])
            assert job["status"] == "succeeded", job
            assert (job["done"], job["failed"]) == (240, 0)
            for worker in workers:
                assert worker.poll() is None, started.logs()
            owner = claimed_by(database_url, job["id"])
            assert any(f":{worker.pid}:" in owner for worker in workers), owner

            # eps fixed small: with eps="auto" the floor for the simulator's 0.05-grid zeros
            # absorbs part of the overconfidence, and T is then not meant to approach T0.
            fit = client.post(
                "/tasks/support-tickets/fit",
                json={"eps": 0.001, "validation": {"holdout": 0.3, "seed": 0}},
            )
            calibration = fit.raise_for_status().json()
            assert calibration["temperature"] == pytest.approx(SIMULATOR_T0, rel=0.2)
            metrics = calibration["metrics"]
            assert metrics["after"]["ece"] < metrics["before"]["ece"]

            answer = client.post(
                "/calibrate",
                json={"task": "support-tickets", "text": "my invoice shows a double charge"},
            )
            result = answer.raise_for_status().json()
            assert result["label"] == "billing"
            assert result["calibration"]["id"] == calibration["id"]
            assert result["llm"]["parse_status"] == "ok"
            assert result["confidence"] < max(result["raw_probabilities"].values())


def claimed_by(database_url: str, job_id: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT worker_id FROM jobs WHERE id = :id"), {"id": job_id}
            ).scalar_one()
    finally:
        engine.dispose()
