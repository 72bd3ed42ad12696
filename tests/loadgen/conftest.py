"""Fixtures for the load generator: a no-op OpenAI-compatible server in its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testkit import free_port

REPO = Path(__file__).resolve().parents[2]


def start_noop_server(*flags: str) -> tuple[subprocess.Popen, str]:
    """Start `testkit.noop_server` on a free port; returns the process and its root URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "testkit.noop_server", "--port", str(port), *flags],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{root}/health", timeout=0.5).status_code == 200:
                return proc, root
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("the no-op server did not start within 15 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def fast_noop() -> str:
    """Root URL of the benchmark's bare asyncio no-op server."""
    proc, root = start_noop_server("--fast")
    try:
        yield root
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def noop() -> str:
    """Root URL of the no-op server (append /v1, /fail/503/v1, /hang/v1, /slow/MS/v1)."""
    proc, root = start_noop_server()
    try:
        yield root
    finally:
        stop(proc)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Three small photos made on the spot (the engine's tests do not need the real pets)."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (64 + i, 48), colour).save(folder / f"Abyssinian_{i}.jpg")
    return folder
