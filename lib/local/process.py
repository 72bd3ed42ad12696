"""Start the local model server as a child process and wait for it to be healthy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lib.settings import REPO_ROOT, load_settings

__all__ = ["start_local_server", "wait_healthy", "is_healthy"]


def is_healthy(base_url: str, timeout_s: float = 1.0) -> bool:
    """True when `<server>/health` answers 200; `base_url` may end in /v1."""
    try:
        return httpx.get(base_url.removesuffix("/v1").rstrip("/") + "/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(base_url: str, proc: subprocess.Popen | None = None, timeout_s: float = 120.0,
                 log_file: Path | None = None) -> None:
    """Block until the server is healthy; raises RuntimeError with its log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = log_file.read_text(errors="replace")[-2000:] if log_file and log_file.exists() else ""
            raise RuntimeError(f"local model server exited with code {proc.returncode}: {out}")
        if is_healthy(base_url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"local model server at {base_url} not healthy after {timeout_s:.0f} s")


def start_local_server(
    host: str, port: int, *extra_args: str, log_file: Path | None = None, wait_s: float = 120.0,
) -> subprocess.Popen:
    """Start `python -m lib serve-local` in its own session (it outlives a Streamlit rerun) and wait for it."""
    log_file = log_file or load_settings().cache_dir / f"local-server-{port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "lib", "serve-local", "--host", host, "--port", str(port), *extra_args],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True,
        )
    try:
        wait_healthy(f"http://{host}:{port}", proc, wait_s, log_file)
    except RuntimeError:
        proc.kill()
        raise
    return proc
