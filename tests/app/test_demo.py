"""The demo's simulated LLM, started as `verbcal simulate-llm` in a child process."""

from __future__ import annotations

import socket

import httpx
import pytest

from app.demo import DemoError, simulator_process
from app.llm.simulator import SIMULATED_MODEL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_simulator_process_answers_and_is_stopped():
    port = free_port()
    with simulator_process("127.0.0.1", port) as (base_url, model):
        assert base_url == f"http://127.0.0.1:{port}/v1"
        assert model == SIMULATED_MODEL
        assert httpx.get(f"{base_url}/models").json()["data"][0]["id"] == SIMULATED_MODEL
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")


def test_a_taken_port_is_refused_before_starting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(DemoError, match=f"port {port} is taken"),
            simulator_process("127.0.0.1", port),
        ):
            pass
