"""`verbcal llm check` against the simulated LLM on loopback."""

from __future__ import annotations

import pytest

from app.cli import cli


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
