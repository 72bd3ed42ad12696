"""The one background job: long work (an evaluation, a load run, training) on its own thread, for pages.

    job = Job("eval pets-tuned", lambda ctl: run_evaluation(options, progress=ctl.report, stop=ctl.stop_event))
    job.start()
    job.snapshot()        # state, latest progress, result, error, elapsed time, a short log; thread-safe
    job.stop()            # cooperative: sets `ctl.stop_event` and runs the hooks the work registered
    job.wait(timeout_s)   # the snapshot once it has ended (or when the timeout passes)

The work receives a `JobControl`: it reports progress (any value; the latest is kept), names
stages (each change is logged), and may register stop hooks (`ctl.on_stop(load_run.stop)`).
Whatever the work raises is kept: a UserError's message, else "Type: message", plus the
traceback. Nothing here knows Streamlit: pages keep the job in session state and poll it.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Literal, TypeVar

from lib.errors import UserError

__all__ = ["Job", "JobControl", "JobSnapshot", "JobState"]

T = TypeVar("T")
JobState = Literal["pending", "running", "succeeded", "failed", "stopped"]
LOG_LINES = 50


@dataclass(frozen=True)
class JobSnapshot(Generic[T]):
    """A job at one moment. `state`: pending (not started), running, succeeded, failed or stopped (the work
    returned after `stop()`; its `result` is kept: a stopped evaluation is a resumable partial run)."""

    name: str
    state: JobState
    progress: Any
    stage: str | None
    result: T | None
    error: str | None
    traceback: str | None
    started_unix_s: float | None
    elapsed_s: float
    log: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def done(self) -> bool:
        """True once the work has ended, whichever way."""
        return self.state in ("succeeded", "failed", "stopped")


class JobControl:
    """What the work sees: `report(progress, stage=...)`, `stop_event`, `stopping` and `on_stop(hook)`."""

    def __init__(self, job: Job[Any]) -> None:
        self._job = job
        self.stop_event = job._stop_event

    @property
    def stopping(self) -> bool:
        """True once `stop()` was asked: finish up and return."""
        return self.stop_event.is_set()

    def report(self, progress: Any = None, *, stage: str | None = None) -> None:
        """Keep `progress` as the latest (when given); a new `stage` also goes to the log."""
        self._job._report(progress, stage)

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Call `hook` when the job is asked to stop (at once if it already was), from the stopping thread."""
        self._job._add_hook(hook)


class Job(Generic[T]):
    """`work(control)` on a daemon thread, started by `start()`; see the module docstring."""

    def __init__(self, name: str, work: Callable[[JobControl], T]) -> None:
        self.name = name
        self._work = work
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._hooks: list[Callable[[], None]] = []
        self._state: JobState = "pending"
        self._progress: Any = None
        self._stage: str | None = None
        self._result: T | None = None
        self._error: str | None = None
        self._traceback: str | None = None
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._started_unix_s: float | None = None
        self._started = 0.0
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._main, name=f"job-{name}", daemon=True)

    def __repr__(self) -> str:
        return f"Job({self.name!r}, {self._state})"

    # --- the caller's side -------------------------------------------------------------------------

    def start(self) -> Job[T]:
        """Start the work on its own thread; returns the job (`job = Job(...).start()`)."""
        with self._lock:
            if self._state != "pending":
                raise RuntimeError(f"job {self.name!r} was already started")
            self._state = "running"
            self._started_unix_s = time.time()
            self._started = time.monotonic()
            self._log_locked("started")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the work to stop (cooperative): sets the stop event and runs the registered hooks once."""
        with self._lock:
            first = not self._stop_event.is_set()
            self._stop_event.set()
            hooks, self._hooks = self._hooks, []
            if first and self._state == "running":
                self._log_locked("stop asked")
        for hook in hooks:
            self._call_hook(hook)

    def wait(self, timeout_s: float | None = None) -> JobSnapshot[T]:
        """Wait until the work has ended (or `timeout_s` passed); returns the snapshot either way."""
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        return self.snapshot()

    def snapshot(self) -> JobSnapshot[T]:
        """Everything about the job now, consistent (taken under its lock)."""
        with self._lock:
            if self._started_unix_s is None:
                elapsed = 0.0
            else:
                elapsed = (self._ended if self._ended is not None else time.monotonic()) - self._started
            return JobSnapshot(self.name, self._state, self._progress, self._stage, self._result, self._error,
                               self._traceback, self._started_unix_s, elapsed, tuple(self._log))

    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def done(self) -> bool:
        """True once the work has ended, whichever way."""
        return self.state in ("succeeded", "failed", "stopped")

    # --- the work's side ---------------------------------------------------------------------------

    def _main(self) -> None:
        control = JobControl(self)
        try:
            result = self._work(control)
        except BaseException as exc:  # a thread's exception would otherwise be lost
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            trace = None if isinstance(exc, UserError) else traceback.format_exc()
            with self._lock:
                self._state, self._error, self._traceback = "failed", message, trace
                self._finish_locked(f"failed: {message.splitlines()[0] if message else type(exc).__name__}")
            return
        with self._lock:
            self._result = result
            self._state = "stopped" if self._stop_event.is_set() else "succeeded"
            self._finish_locked(self._state)

    def _finish_locked(self, line: str) -> None:
        self._ended = time.monotonic()
        self._log_locked(line)
        self._hooks = []  # nothing left to stop

    def _report(self, progress: Any, stage: str | None) -> None:
        with self._lock:
            if progress is not None:
                self._progress = progress
            if stage is not None and stage != self._stage:
                self._stage = stage
                self._log_locked(stage)

    def _add_hook(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if not self._stop_event.is_set():
                self._hooks.append(hook)
                return
        self._call_hook(hook)

    def _call_hook(self, hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception as exc:  # the stop still counts; the failure is logged, not raised into a page
            with self._lock:
                self._log_locked(f"stop hook failed: {type(exc).__name__}: {exc}")

    def _log_locked(self, line: str) -> None:
        elapsed = time.monotonic() - self._started if self._started_unix_s is not None else 0.0
        self._log.append(f"{elapsed:6.1f} s  {line}")
