"""Child processes of the demo and of ``make test-real-llm``: started, read and stopped alike."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_child(
    command: Sequence[str], log: IO[bytes], env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start ``command`` writing stdout and stderr to ``log``, dying with this process.

    Its own session: a terminal's Ctrl-C reaches only the parent, which stops its children in
    its own order (the demo stops the worker before the simulator, so no batch fails half-way).
    """
    return subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=None if env is None else dict(env),
        start_new_session=True,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )


def log_tail(log: IO[bytes], lines: int) -> str:
    """The last ``lines`` lines a child wrote to ``log``."""
    log.flush()
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])


def stop_process(process: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; nothing when it has already ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)
