"""Processes the dashboard starts stop with it: `make run`'s pair, and a server a page starts.

Real processes, real signals: Ctrl-C of the terminal's process group, `kill -9` of the parent, and a port
that an earlier run still holds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testkit import REPO, free_port

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes (its parent has not reaped it yet)
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def wait_until(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def server_pid(port: int) -> int:
    """The pid of the `serve-local` process listening on `port` (from /proc: no psutil needed)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve-local" in argv and str(port).encode() in argv:
                return int(entry.name)
    raise AssertionError(f"no serve-local process on port {port}")


@pytest.fixture()
def dashboard(tmp_path: Path):
    """`python -m lib dashboard` (what `make run` runs) in its own process group, as a terminal would start it."""
    port, local_port = free_port(), free_port()
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib", "dashboard", "--port", str(port), "--local-port", str(local_port)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "APP_MODE": "presenter"})
    try:
        assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/_stcore/health"), 90), log.read_text()
        assert answers(f"http://127.0.0.1:{local_port}/health")
        yield proc, port, local_port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_ctrl_c_stops_the_dashboard_and_its_model_server(dashboard) -> None:
    proc, port, local_port = dashboard
    model_server = server_pid(local_port)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    proc.wait(30)
    assert wait_until(lambda: not alive(model_server), 15)
    assert not answers(f"http://127.0.0.1:{port}/_stcore/health")
    assert not answers(f"http://127.0.0.1:{local_port}/health")


def test_a_killed_dashboard_takes_its_model_server_with_it(dashboard) -> None:
    proc, _, local_port = dashboard
    model_server = server_pid(local_port)
    os.kill(proc.pid, signal.SIGKILL)  # the dashboard alone: no signal reaches the model server
    proc.wait(10)
    assert wait_until(lambda: not alive(model_server), 15), "the model server outlived the dashboard"


def test_a_port_still_held_by_an_earlier_run_is_refused_in_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        busy = held.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "lib", "dashboard", "--port", str(free_port()),
                              "--local-port", str(busy)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: port {busy} on 127.0.0.1 is already in use (a local model server from an earlier run?); stop that "
        f"process (`fuser -k {busy}/tcp`) or choose another port (LOCAL_PORT=...)"]


def test_a_server_started_from_code_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from lib.local import start_local_server; "
         f"start_local_server('127.0.0.1', {port}); print('up', flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "up"
        child = server_pid(port)
        parent.kill()
        parent.wait(10)
        assert wait_until(lambda: not alive(child), 15)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        parent.stdout.close()
