"""Helpers to run verbcal commands as real processes in end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
# `python -m app.cli` is the `verbcal` console script without depending on where it is installed.
VERBCAL = [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without VERBCAL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBCAL_")}
    env.update(extra)
    return env


def verbcal_command(argv: Sequence[str]) -> list[str]:
    """A compose-style command (``["verbcal", ...]``) as a local command line."""
    assert argv[0] == "verbcal", argv
    return [*VERBCAL, *argv[1:]]


class Processes:
    """Started processes, each logging to a file; all stopped on exit (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.running)

    def wait_for_http(self, name: str, url: str, timeout_s: float = 120.0) -> None:
        process = self.running[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{name} did not answer {url} in {timeout_s}s:\n{self.log(name)}")

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    group = Processes(log_dir)
    try:
        yield group
    finally:
        group.stop_all()


def run_verbcal(argv: Sequence[str], env: Mapping[str, str], timeout_s: float = 60) -> str:
    """Run a ``verbcal`` command to completion; its stdout (stderr in the error if it fails)."""
    done = subprocess.run(
        verbcal_command(argv),
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr}"
    return done.stdout


def serve_migrated(
    started: Processes, database_url: str, settings: Mapping[str, str] | None = None
) -> tuple[str, str, dict[str, str]]:
    """Migrate ``database_url``, start ``verbcal serve`` on it; (base URL, admin key, env)."""
    env = clean_environment({"VERBCAL_DATABASE_URL": database_url, **(settings or {})})
    run_verbcal(["verbcal", "migrate"], env)
    admin_key = run_verbcal(["verbcal", "keys", "create", "--role", "admin"], env).strip()
    port = free_port()
    started.start("api", verbcal_command(["verbcal", "serve", "--port", str(port)]), env)
    base_url = f"http://127.0.0.1:{port}"
    started.wait_for_http("api", f"{base_url}/readyz")
    return base_url, admin_key, env
