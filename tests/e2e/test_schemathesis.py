"""Schemathesis against a real `verbcal serve` on SQLite and on PostgreSQL: every check,
stateful links included, a bounded number of examples per operation and a bounded time.

Zero server errors, zero responses that break the declared schema, and every schema-valid
request accepted (`positive_data_acceptance`) except where validity depends on stored data a
static schema cannot state (the task's labels, uploaded file contents): those operations and
why are listed in `schemathesis.toml` next to this file. The task the schema's examples name
(`support-tickets`) is created with labelled data and a fit first, so that requests reach the
fitting, report and calibration logic instead of stopping at 404.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.schemas.common import EXAMPLE_LABELS, EXAMPLE_TASK
from tests.app.factories import LABELS, overconfident_items
from tests.e2e.processes import processes, serve_migrated

pytestmark = [pytest.mark.slow]

MAX_EXAMPLES = 10
# CI runs a fixed seed; set VERBCAL_SCHEMATHESIS_SEED to explore others.
SEED = int(os.environ.get("VERBCAL_SCHEMATHESIS_SEED", "20261204"))
TIME_BUDGET_S = 420
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _example_items(n: int) -> list[dict]:
    """Labelled distributions over the schema examples' labels."""
    rename = dict(zip(LABELS, EXAMPLE_LABELS, strict=True))
    return [
        {
            **item,
            "label": rename[item["label"]],
            "probabilities": {rename[k]: p for k, p in item["probabilities"].items()},
        }
        for item in overconfident_items(n)
    ]


def _seed_example_task(base_url: str, admin_key: str) -> None:
    """The task of the schema's examples, with enough labelled distributions to fit, fitted:
    the examples phase's requests then succeed."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}) as api:
        for method, path, body in (
            ("POST", "/tasks", {"name": EXAMPLE_TASK, "labels": list(EXAMPLE_LABELS)}),
            ("POST", f"/tasks/{EXAMPLE_TASK}/predictions", {"items": _example_items(60)}),
            ("POST", f"/tasks/{EXAMPLE_TASK}/fit", {}),
        ):
            response = api.request(method, path, json=body, timeout=60)
            assert response.is_success, response.text


def _schemathesis(tmp_path, database_url: str) -> None:
    with processes(tmp_path) as started:
        base_url, admin_key, env = serve_migrated(
            started, database_url, {"VERBCAL_LOG_LEVEL": "WARNING"}
        )
        _seed_example_task(base_url, admin_key)
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--request-timeout",
            "30",
            "--no-color",
            "-H",
            f"Authorization: Bearer {admin_key}",
        ]
        done = subprocess.run(
            command,
            cwd=tmp_path,  # schemathesis keeps its example cache in the working directory
            env=env,
            capture_output=True,
            text=True,
            timeout=TIME_BUDGET_S,
        )
        report = done.stdout[-6000:]
        assert done.returncode == 0, f"{report}\n--- server log\n{started.log('api')[-3000:]}"
        assert "Stateful" in report  # the stateful phase (links between operations) ran


def test_schemathesis_finds_nothing_on_sqlite(tmp_path):
    _schemathesis(tmp_path, f"sqlite:///{tmp_path / 'st.db'}")


@pytest.mark.postgres
def test_schemathesis_finds_nothing_on_postgres(tmp_path, fresh_postgres_database):
    _schemathesis(tmp_path, fresh_postgres_database)
