"""Training runs as the Tuning page sees them: finished runs in the results store, the estimated
cost of a job execution, a Gemma job launch, and the local trainer as a background job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lib.cost import DEFAULT_PRICES, PriceTable, compare
from lib.errors import UserError
from lib.jobs import Job, JobControl
from lib.store import RUN_ID, TUNING, Store, as_store, new_run_id

if TYPE_CHECKING:
    from lib.finetune.local import LocalTrainResult

__all__ = [
    "TUNING_DIR",
    "FinishedRun",
    "TrainingProgress",
    "list_finished_runs",
    "read_finished_run",
    "new_tuning_run_name",
    "execution_cost_usd",
    "submit_gemma_job",
    "local_training_job",
]

# Gemma runs write to <results root>/tuning/<run name>/ so the page can find them.
TUNING_DIR = TUNING


@dataclass(frozen=True)
class FinishedRun:
    """A run folder holding `metrics.json` (and usually `MODEL_CARD.md`)."""

    name: str
    url: str
    metrics: dict[str, Any]
    card: str | None


def read_finished_run(folder: Store | str | Path, name: str | None = None) -> FinishedRun | None:
    """The run in `folder` (a store, local path or URL), or None when it has no readable metrics.json yet."""
    out = as_store(folder)
    try:
        metrics = json.loads(out.read_text("metrics.json"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    try:
        card: str | None = out.read_text("MODEL_CARD.md")
    except FileNotFoundError:
        card = None
    return FinishedRun(name or out.uri.rsplit("/", 1)[-1], out.uri, metrics, card)


def list_finished_runs(results_root: Store | str) -> list[FinishedRun]:
    """Finished runs under `<results_root>/tuning/`, newest name last; unfinished folders are skipped and a
    store that cannot be read (a missing bucket) is a UserError."""
    store = as_store(results_root)
    runs = [read_finished_run(store.sub(TUNING_DIR, name), name)
            for name in store.listdir(TUNING_DIR) if RUN_ID.match(name)]
    return [run for run in runs if run is not None]


def new_tuning_run_name(model_id: str) -> str:
    """A default run name: the one run-id format, labelled by the model (`20261128T101500Z-gemma-3-4b-it-3f2a9c1b`)."""
    return new_run_id(model_id.rsplit("/", 1)[-1])


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
    from lib.cloudrun import FinetuneJobOptions, finetune_spec, submit_job

    options = FinetuneJobOptions(image=image, trainer_args=tuple(trainer_args), gpu_type=gpu_type,
                                 max_retries=max_retries, task_timeout_s=task_timeout_s)
    return submit_job(finetune_spec(options), dry_run=dry_run, follow=False, out=out)


@dataclass(frozen=True)
class TrainingProgress:
    """Where the local trainer stands: `stage` (extracting, training, ...) and `done` of `total` in it."""

    stage: str
    done: int
    total: int


def local_training_job(data_dir: Path, out_dir: Path) -> Job[LocalTrainResult]:
    """Train `pets-tuned` on the CPU as a background job; progress is a `TrainingProgress`, stages are logged."""

    def work(control: JobControl) -> LocalTrainResult:
        from lib.finetune.local import train_local  # torch and the backbone load only when training

        def progress(stage: str, done: int, total: int) -> None:
            control.report(TrainingProgress(stage, done, total), stage=stage)

        return train_local(data_dir, out_dir, progress=progress)

    return Job("pets-tuned", work)
