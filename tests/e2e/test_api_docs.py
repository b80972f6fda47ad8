"""docs/api.md runs: every ```sh block, in order, in one bash session against a live server."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from app.db import create_db_engine, create_session_factory, transaction
from app.llm.simulator import SimulatorSettings, running_simulator
from app.migrate import upgrade_to_head
from app.services.keys import create_key
from tests.e2e.processes import REPO_ROOT, VERBCAL, clean_environment, free_port, processes

API_DOC = REPO_ROOT / "docs" / "api.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)

DOCUMENTED_ENDPOINTS = [
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{name}"),
    ("PATCH", "/tasks/{name}"),
    ("DELETE", "/tasks/{name}"),
    ("POST", "/tasks/{name}/examples"),
    ("POST", "/tasks/{name}/predictions"),
    ("POST", "/tasks/{name}/llm/check"),
    ("POST", "/tasks/{name}/elicitations"),
    ("GET", "/jobs/{id}"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/tasks/{name}/fit"),
    ("GET", "/tasks/{name}/calibrations"),
    ("POST", "/tasks/{name}/calibrations/{id}/activate"),
    ("GET", "/tasks/{name}/report"),
    ("POST", "/calibrate"),
    ("POST", "/calibrate/batch"),
    ("POST", "/feedback"),
    ("GET", "/tasks/{name}/monitoring"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


def sh_blocks() -> list[str]:
    return SH_BLOCK.findall(API_DOC.read_text(encoding="utf-8"))


def _curl_calls(script: str) -> list[tuple[str, str]]:
    """(method, path template) of every curl call in ``script``, path variables generalized."""
    calls = []
    joined = script.replace("\\\n", " ")
    for command in re.findall(r"curl [^\n]*", joined):
        url = re.search(r'"\$VERBCAL_URL(/[^"?]*)', command)
        if url is None:
            continue
        method = re.search(r"-X (\w+)", command)
        if method:
            verb = method.group(1)
        elif " -d " in command or " -F " in command:
            verb = "POST"
        else:
            verb = "GET"
        path = re.sub(r"/tasks/tickets", "/tasks/{name}", url.group(1))
        path = re.sub(r"\$\w+", "{id}", path)
        calls.append((verb, path))
    return calls


def test_every_endpoint_has_a_curl_example():
    calls = set(_curl_calls("\n".join(sh_blocks())))
    missing = [endpoint for endpoint in DOCUMENTED_ENDPOINTS if endpoint not in calls]
    assert not missing, f"docs/api.md has no curl example for {missing}"


def test_curl_calls_are_found_across_continued_lines():
    script = 'curl -fsS -X POST "$VERBCAL_URL/jobs/$JOB_ID/cancel" \\\n  -H "$AUTH"'
    assert _curl_calls(script) == [("POST", "/jobs/{id}/cancel")]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("curl") is None, reason="curl")
def test_api_doc_examples_run_against_a_live_server(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'verbcal.db'}"
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    with transaction(create_session_factory(engine)) as session:
        _, admin_key = create_key(session, "admin", "docs")
        _, app_key = create_key(session, "app", "docs")
    engine.dispose()
    port = free_port()
    # Small batches and a slight LLM delay keep the first job running for a while, so the
    # guide's cancel example meets a job that has not finished yet.
    simulator = SimulatorSettings(delay_s=0.05)
    with running_simulator(simulator) as llm_url, processes(tmp_path) as started:
        env = clean_environment(
            {
                "VERBCAL_DATABASE_URL": database_url,
                "VERBCAL_JOB_BATCH_SIZE": "4",
                "VERBCAL_WORKER_POLL_S": "0.2",
                "VERBCAL_LOG_JSON": "false",
            }
        )
        started.start("api", [*VERBCAL, "serve", "--port", str(port)], env)
        started.wait_for_http("api", f"http://127.0.0.1:{port}/healthz")
        script = "set -euo pipefail\n" + "\n".join(sh_blocks())
        shell_env = clean_environment(
            {
                "VERBCAL_URL": f"http://127.0.0.1:{port}",
                "VERBCAL_KEY": admin_key,
                "APP_KEY": app_key,
                "LLM_BASE_URL": llm_url,
            }
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"docs/api.md failed (exit {result.returncode})\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}\n{started.logs()}"
        )
    assert "cancelled" in result.stdout
