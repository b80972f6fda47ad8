"""docker-compose.yml and the Dockerfile refer only to what the app really has.

No Docker engine is needed: the files are parsed and checked against the typer CLI, the
settings class and the app's routes.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from typing import Any

import pytest
import typer.main
import yaml
from fastapi.testclient import TestClient
from typer.exceptions import TyperException

from app.cli import cli
from app.config import Settings
from app.main import create_app
from tests.e2e.processes import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
VERBCAL_SERVICES = ("migrate", "api", "worker", "llm-simulator")
CORE_SERVICES = ("postgres", "migrate", "api", "worker")
SETTING_VARIABLES = {f"VERBCAL_{name.upper()}" for name in Settings.model_fields}


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def service(name: str) -> dict:
    return compose()["services"][name]


@cache
def app_client() -> TestClient:
    return TestClient(create_app(Settings(database_url="sqlite://"), start_worker=False))


def app_has_endpoint(path: str) -> bool:
    """The app routes GET ``path`` (an unmigrated database may make it answer 503, not 404)."""
    return app_client().get(path).status_code != 404


def parse_verbcal_command(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """(subcommand path, parsed parameters by name) of a `verbcal ...` command.

    The CLI's own parser reads the arguments, so an unknown command, an unknown option or a bad
    value fails exactly as `verbcal` would.
    """
    assert argv[0] == "verbcal", f"not a verbcal command: {argv}"
    command = typer.main.get_command(cli)
    path: list[str] = []
    rest = list(argv[1:])
    while hasattr(command, "commands"):  # a group: `verbcal`, `verbcal keys`
        assert rest, f"{argv}: missing subcommand"
        name = rest.pop(0)
        assert name in command.commands, f"{argv}: `verbcal` has no command {name!r}"
        command = command.commands[name]
        path.append(name)
    try:
        context = command.make_context(" ".join(["verbcal", *path]), rest)
    except TyperException as exc:
        raise AssertionError(f"{argv}: {exc}") from exc
    return path, context.params


def container_port(mapping: str) -> int:
    return int(str(mapping).rsplit(":", 1)[-1])


def healthcheck_urls(test: list[str] | str) -> list[str]:
    text = test if isinstance(test, str) else " ".join(test)
    return re.findall(r"http://127\.0\.0\.1:\d+/[\w/]*", text)


def test_verbcal_services_run_real_commands_with_real_options():
    for name in VERBCAL_SERVICES:
        parse_verbcal_command(service(name)["command"])


def test_the_parser_rejects_unknown_commands_and_options():
    with pytest.raises(AssertionError, match="no command"):
        parse_verbcal_command(["verbcal", "serv"])
    with pytest.raises(AssertionError, match="No such option"):
        parse_verbcal_command(["verbcal", "serve", "--threads", "2"])
    with pytest.raises(AssertionError, match="valid integer"):
        parse_verbcal_command(["verbcal", "serve", "--port", "http"])


def test_commands_are_the_ones_each_service_needs():
    assert parse_verbcal_command(service("migrate")["command"])[0] == ["migrate"]
    assert parse_verbcal_command(service("worker")["command"])[0] == ["worker"]
    path, options = parse_verbcal_command(service("api")["command"])
    assert path == ["serve"]
    assert options["host"] == "0.0.0.0"
    # On PostgreSQL jobs belong to the worker service.
    assert options["no_worker"] is True
    path, options = parse_verbcal_command(service("llm-simulator")["command"])
    assert path == ["simulate-llm"]
    assert options["host"] == "0.0.0.0"
    assert float(options["t0"]) == 2.0


def test_every_verbcal_variable_is_a_setting():
    for name in VERBCAL_SERVICES:
        environment = service(name).get("environment") or {}
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        unknown = {key for key in environment if key.startswith("VERBCAL_")} - SETTING_VARIABLES
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"
    dockerfile_variables = set(re.findall(r"\b(VERBCAL_[A-Z_]+)=", DOCKERFILE.read_text()))
    assert dockerfile_variables <= SETTING_VARIABLES


def test_api_and_worker_use_postgres_and_secrets_from_the_environment():
    for name in ("migrate", "api", "worker"):
        environment = service(name)["environment"]
        url = environment["VERBCAL_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://verbcal:${POSTGRES_PASSWORD")
        assert url.endswith("@postgres:5432/verbcal")
        assert environment["VERBCAL_SECRET_KEY"].startswith("${VERBCAL_SECRET_KEY")


def test_ports_match_what_the_commands_listen_on():
    for name in ("api", "llm-simulator"):
        _, options = parse_verbcal_command(service(name)["command"])
        ports = [container_port(mapping) for mapping in service(name)["ports"]]
        assert ports == [options["port"]], name
    assert "ports" not in service("worker"), "a published port would stop --scale worker=N"
    assert "container_name" not in service("worker")


def test_healthchecks_probe_real_endpoints():
    _, options = parse_verbcal_command(service("api")["command"])
    (url,) = healthcheck_urls(service("api")["healthcheck"]["test"])
    assert url.startswith(f"http://127.0.0.1:{options['port']}/")
    assert app_has_endpoint(url.split(f":{options['port']}", 1)[1])
    _, options = parse_verbcal_command(service("llm-simulator")["command"])
    (url,) = healthcheck_urls(service("llm-simulator")["healthcheck"]["test"])
    assert url == f"http://127.0.0.1:{options['port']}/v1/models"
    # The image's /healthz probe means nothing for processes that serve no HTTP.
    for name in ("migrate", "worker"):
        assert service(name)["healthcheck"] == {"disable": True}, name


def test_dependencies_wait_for_postgres_and_migrations():
    postgres = service("postgres")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"], "postgres needs a named volume"
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert service(name)["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_profiles():
    for name in CORE_SERVICES:
        assert "profiles" not in service(name), f"{name} must start with a plain `up`"
    assert service("llm-simulator")["profiles"] == ["demo"]
    assert service("ollama")["profiles"] == ["ollama"]
    assert service("ollama")["image"].startswith("ollama/ollama")
    assert any(v.startswith("ollama:") for v in service("ollama")["volumes"])
    assert "ollama" in compose()["volumes"]
    assert service("ollama-pull")["profiles"] == ["ollama"]
    deployment = (REPO_ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert '"base_url": "http://ollama:11434/v1"' in deployment
    assert '"base_url": "http://llm-simulator:8010/v1"' in deployment


def test_required_variables_are_in_env_example():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"POSTGRES_PASSWORD", "VERBCAL_SECRET_KEY"} <= required
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert required <= example
    referenced = set(re.findall(r"\$\{(\w+)", text))
    documented = set(re.findall(r"^#? ?(\w+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert referenced <= documented, f".env.example lacks {sorted(referenced - documented)}"


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into stages."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or (line.startswith("ARG") and not stages):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build"
    final = stages[-1]
    assert "slim" in DOCKERFILE.read_text()
    assert any(line.startswith("COPY --from=") for line in final)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the final image runs as a non-root user"
    installs = " ".join(line for line in final if "apt-get" in line or "apk" in line)
    for tool in ("gcc", "build-essential", "make", "g++"):
        assert tool not in installs
    (healthcheck,) = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "/healthz" in healthcheck
    (cmd,) = [line for line in final if line.startswith("CMD ")]
    argv = json.loads(cmd.removeprefix("CMD "))
    path, options = parse_verbcal_command(argv)
    assert path == ["serve"]
    assert f"127.0.0.1:{options['port']}/healthz" in healthcheck
    assert app_client().get("/healthz").status_code == 200
    assert f"EXPOSE {options['port']}" in final


def test_no_secrets_are_baked_into_the_image():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"(SECRET|PASSWORD|TOKEN|API_KEY)\w*=", text)
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    for argv in (shlex.split(line) for line in text.splitlines() if line.startswith("COPY ")):
        assert ".env" not in argv
