"""Child processes: started with their output in a log, read back, stopped, dying with a parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from app.processes import log_tail, start_child, stop_process

# A child that says it is ready, then waits to be stopped.
WAITER = "import sys, time; print('one'); print('two'); print('ready', flush=True); time.sleep(600)"
WAIT_S = 60.0


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold within the wait")
        time.sleep(0.05)


def test_a_child_logs_is_read_back_and_stopped_by_sigterm():
    with tempfile.TemporaryFile() as log:
        process = start_child([sys.executable, "-c", WAITER], log)
        try:
            wait_until(lambda: log_tail(log, 1) == "ready")
            assert log_tail(log, 2) == "two\nready"
            assert log_tail(log, 10) == "one\ntwo\nready"
            assert os.getsid(process.pid) == process.pid  # its own session
        finally:
            stop_process(process)
    assert process.returncode == -signal.SIGTERM
    stop_process(process)  # stopping a stopped child does nothing


def test_a_child_ignoring_sigterm_is_killed():
    ignoring = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    with tempfile.TemporaryFile() as log:
        process = start_child([sys.executable, "-c", ignoring + WAITER], log)
        wait_until(lambda: log_tail(log, 1) == "ready")
        stop_process(process, timeout_s=0.5)
    assert process.returncode == -signal.SIGKILL


def test_a_child_gets_the_environment_it_is_given():
    code = "import os; print(os.environ.get('VERBCAL_PROCESS_TEST'))"
    with tempfile.TemporaryFile() as log:
        process = start_child([sys.executable, "-c", code], log, {"VERBCAL_PROCESS_TEST": "x"})
        assert process.wait(WAIT_S) == 0
        assert log_tail(log, 1) == "x"


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux only")
def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed():
    parent = (
        "import sys, tempfile, time; from app.processes import start_child; "
        f"child = start_child([sys.executable, '-c', {WAITER!r}], tempfile.TemporaryFile()); "
        "print(child.pid, flush=True); time.sleep(600)"
    )
    process = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    child_pid = int(process.stdout.readline())
    process.kill()
    process.wait(WAIT_S)

    def child_gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        # A zombie until init reaps it: gone for our purpose.
        try:
            with open(f"/proc/{child_pid}/stat") as stat:
                return stat.read().split(") ")[1].startswith("Z")
        except FileNotFoundError:
            return True

    wait_until(child_gone)
