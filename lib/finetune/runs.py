"""Training runs as the Tuning page sees them: finished runs under the results root, the estimated
cost of a job execution, a Gemma job launch, and any trainer running in a background thread."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lib.cost import DEFAULT_PRICES, PriceTable, compare
from lib.errors import UserError
from lib.finetune.gemma_ckpt import OutputFolder

__all__ = [
    "TUNING_DIR",
    "FinishedRun",
    "list_finished_runs",
    "read_finished_run",
    "execution_cost_usd",
    "submit_gemma_job",
    "BackgroundRun",
    "RunSnapshot",
]

# Gemma runs write to <results root>/tuning/<run name>/ so the page can find them.
TUNING_DIR = "tuning"


@dataclass(frozen=True)
class FinishedRun:
    """A run folder holding `metrics.json` (and usually `MODEL_CARD.md`)."""

    name: str
    url: str
    metrics: dict[str, Any]
    card: str | None


def read_finished_run(folder: str, name: str | None = None) -> FinishedRun | None:
    """The run in `folder` (local path or URL), or None when it has no readable metrics.json yet."""
    out = OutputFolder(folder)
    try:
        metrics = json.loads(out.read_text("metrics.json"))
    except (FileNotFoundError, ValueError):
        return None
    card = out.read_text("MODEL_CARD.md") if out.exists("MODEL_CARD.md") else None
    return FinishedRun(name or out.uri.rsplit("/", 1)[-1], out.uri, metrics, card)


def list_finished_runs(results_root: str) -> list[FinishedRun]:
    """Finished runs under `<results_root>/tuning/`, newest name last; unfinished folders are skipped."""
    root = OutputFolder(results_root)
    try:
        names = root.listdir(TUNING_DIR)
    except OSError as exc:
        raise UserError(f"{root.url(TUNING_DIR)}: cannot list runs ({exc})") from None
    runs = [read_finished_run(root.url(TUNING_DIR, name), name) for name in names]
    return [run for run in runs if run is not None]


def execution_cost_usd(duration_s: float | None, tasks: int, gpu_type: str | None,
                       prices: PriceTable = DEFAULT_PRICES) -> float | None:
    """Cloud Run cost of `tasks` tasks for `duration_s` each at the GPU's minimum CPU and memory;
    None when the duration or the GPU's price is unknown (tasks rarely last the whole execution: an upper bound)."""
    if duration_s is None or not gpu_type:
        return None
    try:
        row = prices.row(gpu_type)
    except UserError:
        return None
    return compare(row, instance_s=duration_s * max(tasks, 1), window_s=max(duration_s, 1.0)).cloud_run_usd


def submit_gemma_job(
    *, image: str, trainer_args: list[str], gpu_type: str = "nvidia-l4", dry_run: bool = True,
    max_retries: int = 3, task_timeout_s: int = 3600, out: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """`python -m lib finetune submit` from code (the Tuning page): the same spec, the same submission."""
    from lib.cloudrun.jobs import FinetuneJobOptions, finetune_spec, submit_job

    options = FinetuneJobOptions(image=image, trainer_args=tuple(trainer_args), gpu_type=gpu_type,
                                 max_retries=max_retries, task_timeout_s=task_timeout_s)
    return submit_job(finetune_spec(options), dry_run=dry_run, follow=False, out=out)


@dataclass(frozen=True)
class RunSnapshot:
    """A background run at one moment: `state` is running|succeeded|failed."""

    label: str
    state: str
    stage: str
    done: int
    total: int
    started: float
    elapsed_s: float
    result: Any = None
    error: str | None = None
    log: tuple[str, ...] = field(default_factory=tuple)


class BackgroundRun:
    """Runs `work(progress)` in a daemon thread; `progress(stage, done, total)` updates what `snapshot()` shows.

    Pages keep the object in session state and poll it; nothing here knows about Streamlit.
    """

    def __init__(self, label: str, work: Callable[[Callable[[str, int, int], None]], Any]):
        self.label = label
        self._work = work
        self._lock = threading.Lock()
        self._state, self._stage, self._done, self._total = "running", "starting", 0, 0
        self._result: Any = None
        self._error: str | None = None
        self._log: list[str] = []
        self._started = time.time()
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._main, name=f"train-{label}", daemon=True)
        self._thread.start()

    def _progress(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            if stage != self._stage:
                self._log.append(f"{time.time() - self._started:6.1f} s  {stage}")
            self._stage, self._done, self._total = stage, done, total

    def _main(self) -> None:
        try:
            result = self._work(self._progress)
        except UserError as exc:
            outcome: tuple[str, Any, str | None] = ("failed", None, str(exc))
        except Exception as exc:  # a page must show the failure, not lose it in a thread
            outcome = ("failed", None, f"{type(exc).__name__}: {exc}")
        else:
            outcome = ("succeeded", result, None)
        with self._lock:
            self._state, self._result, self._error = outcome
            self._ended = time.time()

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            end = self._ended or time.time()
            return RunSnapshot(self.label, self._state, self._stage, self._done, self._total, self._started,
                               end - self._started, self._result, self._error, tuple(self._log))

    def join(self, timeout_s: float | None = None) -> RunSnapshot:
        """Wait for the thread (tests and scripts); returns the final snapshot."""
        self._thread.join(timeout_s)
        return self.snapshot()
