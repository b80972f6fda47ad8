"""The `verbcal` command, run in-process with typer's CliRunner."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, create_session_factory, transaction
from app.migrate import head_revision
from app.models import ApiKey
from app.services.keys import authenticate, hash_key
from calibrators import TemperatureScaling

LABELS = ["billing", "bug", "other"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def database_env(tmp_path) -> dict[str, str]:
    return {"VERBCAL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "VERBCAL_LOG_JSON": "0"}


@pytest.fixture
def migrated_env(runner, database_env) -> dict[str, str]:
    result = runner.invoke(cli, ["migrate"], env=database_env)
    assert result.exit_code == 0, result.output
    return database_env


def overconfident_data(n: int, t0: float = 2.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    posterior = rng.dirichlet(np.full(len(LABELS), 0.8), size=n)
    y = np.array([rng.choice(len(LABELS), p=row) for row in posterior])
    stated = posterior**t0
    return stated / stated.sum(axis=1, keepdims=True), y


def write_csv(path, P, y) -> None:
    lines = ["id,label," + ",".join(LABELS)]
    for i, (row, k) in enumerate(zip(P, y, strict=True)):
        lines.append(f"{i},{LABELS[k]}," + ",".join(repr(float(p)) for p in row))
    path.write_text("\n".join(lines) + "\n")


def write_jsonl(path, P, y) -> None:
    with path.open("w") as handle:
        for row, k in zip(P, y, strict=True):
            probabilities = dict(zip(LABELS, map(float, row), strict=True))
            handle.write(json.dumps({"label": LABELS[k], "probabilities": probabilities}) + "\n")


def refuse_constant(name: str):
    raise AssertionError(f"non-standard JSON constant {name}")


# ------------------------------------------------------------------------------ database commands


def test_migrate_prints_the_head_revision(runner, database_env):
    result = runner.invoke(cli, ["migrate"], env=database_env)
    assert result.exit_code == 0, result.output
    assert head_revision() in result.output
    again = runner.invoke(cli, ["migrate"], env=database_env)
    assert again.exit_code == 0


def test_serve_refuses_an_unmigrated_database(runner, database_env):
    result = runner.invoke(cli, ["serve", "--port", "0"], env=database_env)
    assert result.exit_code == 1
    assert "verbcal migrate" in result.output
    assert "not migrated" in result.output


def test_keys_create_prints_a_key_that_authenticates(runner, migrated_env):
    result = runner.invoke(
        cli, ["keys", "create", "--role", "app", "--name", "ci"], env=migrated_env
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert re.fullmatch(r"vc_[A-Za-z0-9_-]+", secret)
    assert "not be shown again" in result.stderr
    engine = create_db_engine(migrated_env["VERBCAL_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            row = authenticate(session, secret)
            assert row is not None and row.role == "app" and row.name == "ci"
            stored = session.scalars(select(ApiKey)).all()
            assert [key.key_hash for key in stored] == [hash_key(secret)]
            assert secret not in {key.key_hash for key in stored}
            hashed = stored[0].key_hash
    finally:
        engine.dispose()

    listing = runner.invoke(cli, ["keys", "list"], env=migrated_env)
    assert listing.exit_code == 0, listing.output
    assert secret[:11] in listing.output and "ci" in listing.output
    assert secret not in listing.output
    assert hashed not in listing.output

    revoked = runner.invoke(cli, ["keys", "revoke", secret[:11]], env=migrated_env)
    assert revoked.exit_code == 0, revoked.output
    engine = create_db_engine(migrated_env["VERBCAL_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            assert authenticate(session, secret) is None
    finally:
        engine.dispose()
    assert runner.invoke(cli, ["keys", "revoke", secret[:11]], env=migrated_env).exit_code == 1


def test_keys_create_rejects_an_unknown_role(runner, migrated_env):
    result = runner.invoke(cli, ["keys", "create", "--role", "root"], env=migrated_env)
    assert result.exit_code == 2
    assert "admin, app" in result.output


def test_keys_need_a_migrated_database(runner, database_env):
    result = runner.invoke(cli, ["keys", "list"], env=database_env)
    assert result.exit_code == 1
    assert "verbcal migrate" in result.output


# ---------------------------------------------------------------------------------- offline fit


@pytest.mark.parametrize(("fmt", "refit"), [("csv", "--no-refit"), ("jsonl", "--refit")])
def test_fit_prints_the_temperature_of_a_direct_fit(runner, tmp_path, fmt, refit):
    P, y = overconfident_data(600, t0=2.0, seed=3)
    data = tmp_path / f"data.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(data, P, y)
    output = tmp_path / "calibration.json"
    result = runner.invoke(
        cli,
        [
            *("fit", str(data), "--eps", "0.001", "--holdout", "0.25", "--seed", "7"),
            *("--output", str(output), refit),
        ],
    )
    assert result.exit_code == 0, result.output

    # The split is spelled out here on purpose: it pins the documented semantics.
    order = np.random.default_rng(7).permutation(len(y))
    fit_rows = np.sort(order[round(0.25 * len(y)) :])
    if refit == "--refit":  # the written calibrator is refitted on every row
        fit_rows = np.arange(len(y))
        assert "written calibrator: refitted on all 600 rows" in result.stdout
    direct = TemperatureScaling(objective="nll", eps=0.001, random_state=7)
    direct.fit(P[fit_rows], y[fit_rows])
    printed = float(re.search(r"temperature: ([0-9.]+)", result.stdout).group(1))
    assert printed == pytest.approx(direct.temperature_, abs=1e-6)
    assert "ECE" in result.stdout and "calibrated" in result.stdout

    content = json.loads(output.read_text(), parse_constant=refuse_constant)
    assert content["method"] == "temperature"
    assert content["fitted"]["temperature"] == pytest.approx(direct.temperature_)
    assert content["labels"] == LABELS


def test_fit_with_auto_eps(runner, tmp_path):
    P, y = overconfident_data(400, seed=5)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    result = runner.invoke(cli, ["fit", str(data), "--output", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert re.search(r"eps: [0-9.e-]+", result.stdout)


def test_report_writes_json_without_nan(runner, tmp_path):
    P, y = overconfident_data(300, seed=2)
    data = tmp_path / "data.jsonl"
    write_jsonl(data, P, y)
    calibration = tmp_path / "calibration.json"
    fitted = runner.invoke(cli, ["fit", str(data), "--output", str(calibration)])
    assert fitted.exit_code == 0, fitted.output
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        cli,
        [
            *(
                "report",
                str(data),
                "--calibration",
                str(calibration),
                "--json-out",
                str(report_path),
            ),
            *("--n-bins", "10", "--binning", "quantile"),
        ],
    )
    assert result.exit_code == 0, result.output
    for word in ("ECE", "MCE", "NLL", "Brier", "raw", "calibrated", "reliability"):
        assert word in result.stdout
    with report_path.open() as handle:
        report = json.load(handle, parse_constant=refuse_constant)
    assert report["n"] == 300
    assert report["labels"] == LABELS
    assert report["calibrated"]["calibrator"]["method"] == "temperature"
    assert report["conventions"]["n_bins"] == 10


def test_report_without_calibration(runner, tmp_path):
    P, y = overconfident_data(100, seed=4)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    result = runner.invoke(cli, ["report", str(data)])
    assert result.exit_code == 0, result.output
    assert "calibrated" not in result.stdout.split("reliability")[0]


@pytest.mark.parametrize("command", ["fit", "report"])
def test_bad_rows_exit_2_naming_the_row(runner, tmp_path, command):
    data = tmp_path / "bad.csv"
    data.write_text("label,a,b\na,0.6,0.4\nb,0.3,0.7\nc,0.5,0.5\n")
    result = runner.invoke(cli, [command, str(data)])
    assert result.exit_code == 2
    assert "line 4" in result.output and "unknown label 'c'" in result.output

    data.write_text("label,a,b\na,0.6,-0.4\n")
    result = runner.invoke(cli, [command, str(data)])
    assert result.exit_code == 2
    assert "line 2" in result.output and "'b'" in result.output and "negative" in result.output


def test_fit_rejects_bad_options(runner, tmp_path):
    P, y = overconfident_data(50)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    assert runner.invoke(cli, ["fit", str(data), "--eps", "-1"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(data), "--objective", "nope"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(data), "--holdout", "1.5"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(tmp_path / "missing.csv")]).exit_code == 2


# ------------------------------------------------------------------------------------ llm check


def _create_task(env: dict[str, str], llm: dict | None) -> None:
    from app.db import create_db_engine, create_session_factory, transaction
    from app.services.tasks import create_task

    engine = create_db_engine(env["VERBCAL_DATABASE_URL"])
    with transaction(create_session_factory(engine)) as session:
        create_task(session, {"name": "tickets", "labels": ["billing", "technical"], "llm": llm})
    engine.dispose()


@pytest.mark.parametrize("reject_json_schema", [False, True], ids=["accepts", "rejects"])
def test_llm_check_prints_probes_and_a_recommendation(
    runner, migrated_env, monkeypatch, reject_json_schema
):
    from app.llm.simulator import SimulatorSettings, running_simulator

    secret = "sk-cli-secret-never-printed"
    monkeypatch.setenv("VERBCAL_LLM_KEY_CLI", secret)
    settings = SimulatorSettings(reject_json_schema=reject_json_schema)
    with running_simulator(settings) as base_url:
        llm = {
            "base_url": base_url,
            "model": "verbcal-simulated-llm",
            "api_key_env": "VERBCAL_LLM_KEY_CLI",
        }
        _create_task(migrated_env, llm)
        result = runner.invoke(cli, ["llm", "check", "tickets"], env=migrated_env)
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    lines = result.output.splitlines()
    probes = {
        line.split()[0]: line
        for line in lines
        if line.split()[:1]
        and line.split()[0] in ("json_schema", "json_object", "none", "seed", "n")
    }
    assert set(probes) == {"json_schema", "json_object", "none", "seed", "n"}
    assert "no (400)" in probes["n"] and "n > 1" in probes["n"]
    if reject_json_schema:
        assert "no (500)" in probes["json_schema"]
        assert "unsupported_structured_output" in probes["json_schema"]
        assert lines[-1].startswith("recommendation: set structured_output='json_object'")
    else:
        assert probes["json_schema"].split()[1] == "yes"
        assert lines[-1].startswith("recommendation: keep structured_output='json_schema'")


def test_llm_check_fails_without_a_usable_mode_or_config(runner, migrated_env):
    _create_task(migrated_env, None)
    result = runner.invoke(cli, ["llm", "check", "tickets"], env=migrated_env)
    assert result.exit_code == 1 and "has no LLM config" in result.output
    assert runner.invoke(cli, ["llm", "check", "nope"], env=migrated_env).exit_code == 1


def test_llm_check_passes_a_server_whose_model_answer_does_not_parse(runner, migrated_env):
    from app.llm.simulator import SimulatorSettings, running_simulator

    with running_simulator(SimulatorSettings(rate_prose=1.0)) as base_url:
        _create_task(migrated_env, {"base_url": base_url, "model": "verbcal-simulated-llm"})
        result = runner.invoke(cli, ["llm", "check", "tickets"], env=migrated_env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith(
        "recommendation: the server accepts structured_output='json_schema', but no answer to "
        "the probe parsed ("
    )
    assert "the model's answers, not the server, are the problem" in lines[-1]


def test_llm_check_fails_when_the_server_accepts_no_mode(runner, migrated_env):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    llm = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "m", "max_retries": 0}
    _create_task(migrated_env, llm)
    result = runner.invoke(cli, ["llm", "check", "tickets"], env=migrated_env)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        "recommendation: the server accepted no structured-output mode: check the URL, the "
        "model name and the errors above"
    )
