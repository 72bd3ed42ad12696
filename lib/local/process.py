"""Start the local model server (and the dashboard) as child processes that never outlive their parent.

A child started here gets the read end of a pipe whose write end only the parent holds; `python -m lib`
watches it (`watch_parent`) and shuts down when it reads end-of-file, which the kernel delivers however
the parent ends: Ctrl-C, a crash, `kill -9`. Children stay in the parent's process group too, so Ctrl-C
in a terminal reaches them directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Mapping, NoReturn

import httpx

from lib.errors import UserError
from lib.settings import REPO_ROOT, load_settings

__all__ = [
    "PARENT_FD_ENV", "start_local_server", "stop_process", "wait_healthy", "is_healthy", "port_in_use",
    "watch_parent", "launch_dashboard",
]

PARENT_FD_ENV = "PETS_PARENT_FD"  # the inherited pipe end a child watches for its parent's exit


class _TiedProcess(subprocess.Popen[bytes]):
    """A child watching the read end of our pipe; `parent_fd` is the write end we hold (see `stop_process`)."""

    parent_fd: int | None = None


def is_healthy(base_url: str, timeout_s: float = 1.0) -> bool:
    """True when `<server>/health` answers 200; `base_url` may end in /v1."""
    try:
        return httpx.get(base_url.removesuffix("/v1").rstrip("/") + "/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on `host:port`."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


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


def _tied_child(argv: list[str], *, env: Mapping[str, str], log_file: Path, keep_across_exec: bool = False
                ) -> _TiedProcess:
    read_end, write_end = os.pipe()
    try:
        with open(log_file, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = _TiedProcess(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, pass_fds=(read_end,),
                                env={**env, PARENT_FD_ENV: str(read_end)})
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    if keep_across_exec:
        os.set_inheritable(write_end, True)
    proc.parent_fd = write_end  # closed by stop_process; else at our exit
    return proc


def start_local_server(
    host: str, port: int, *extra_args: str, log_file: Path | None = None, wait_s: float = 120.0,
    keep_across_exec: bool = False,
) -> subprocess.Popen:
    """Start `python -m lib serve-local` tied to this process, and wait until it is healthy.

    Refuses a port that is already taken (an earlier server would otherwise be used without a word).
    """
    if port_in_use(host, port):
        raise UserError(f"port {port} on {host} is already in use (a local model server from an earlier run?); "
                        f"stop that process (`fuser -k {port}/tcp`) or choose another port (LOCAL_PORT=...)")
    log_file = log_file or load_settings().cache_dir / f"local-server-{port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "lib", "serve-local", "--host", host, "--port", str(port), *extra_args]
    proc = _tied_child(argv, env=os.environ, log_file=log_file, keep_across_exec=keep_across_exec)
    try:
        wait_healthy(f"http://{host}:{port}", proc, wait_s, log_file)
    except RuntimeError:
        stop_process(proc)
        raise
    return proc


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Ask a child to stop (SIGTERM), kill it if it does not, and release its tie; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if isinstance(proc, _TiedProcess) and proc.parent_fd is not None:
        with contextlib.suppress(OSError):  # already closed
            os.close(proc.parent_fd)
        proc.parent_fd = None
    return proc.returncode


def watch_parent(environ: Mapping[str, str] | None = None, grace_s: float = 5.0) -> bool:
    """In a child started by this module: stop this process when the parent goes away; False if not a child."""
    environ = os.environ if environ is None else environ
    raw = environ.get(PARENT_FD_ENV, "")
    if not raw.isdigit():
        return False
    fd = int(raw)

    def wait_for_eof() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)  # servers shut down cleanly on SIGTERM
        time.sleep(grace_s)
        os._exit(1)  # it did not: do not linger as an orphan

    threading.Thread(target=wait_for_eof, name="watch-parent", daemon=True).start()
    return True


def launch_dashboard(*, host: str, port: int, local_host: str, local_port: int,
                     streamlit_args: tuple[str, ...] = ()) -> NoReturn:
    """`make run`: the local model server tied to this process, then this process becomes the dashboard.

    After `exec` the dashboard holds the tie, so the model server stops with it however it ends.
    """
    if port_in_use(host, port):
        raise UserError(f"port {port} is already in use (a dashboard from an earlier run?); stop it or use PORT=...")
    log = load_settings().cache_dir / f"local-server-{local_port}.log"
    start_local_server(local_host, local_port, log_file=log, keep_across_exec=True)
    print(f"local model server on http://{local_host}:{local_port}/v1 (log: {log}); "
          f"dashboard on http://{'localhost' if host in ('127.0.0.1', 'localhost') else host}:{port}", flush=True)
    argv = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py"),
            "--server.port", str(port), "--server.address", host, *streamlit_args]
    os.environ.update({"LOCAL_MODELS_HOST": local_host, "LOCAL_MODELS_PORT": str(local_port)})
    os.chdir(REPO_ROOT)
    os.execv(sys.executable, argv)
