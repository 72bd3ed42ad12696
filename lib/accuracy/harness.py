"""The evaluation harness: every labelled photo to one backend, with bounded concurrency, one record each.

Runs are append-only and resumable: asked again with the same question, the harness finds the
unfinished run and asks only the photos it has no record for. Failed requests are records too
(`error` set), counted in the figures as wrong answers, never dropped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from lib.accuracy.metrics import RunMetrics, summarize
from lib.accuracy.records import (
    EvalRecord,
    RecordWriter,
    RunInfo,
    finished,
    git_commit,
    has_run,
    list_runs,
    read_info,
    read_records,
    write_info,
)
from lib.breeds import UNKNOWN
from lib.client import BackendClient, RetryPolicy, make_http_client
from lib.data import Photo, PhotoSet, Split, select_photos
from lib.errors import UserError
from lib.images import ImageError, prepare_jpeg
from lib.jobs import Job
from lib.registry import Backend
from lib.store import EVALS, Store, new_run_id

__all__ = [
    "EvalOptions", "Progress", "EvalResult", "evaluate", "run_evaluation", "evaluation_job",
]

@dataclass(frozen=True)
class EvalOptions:
    """One evaluation: which backend, which photos, where the results go, how hard to push."""

    backend: Backend
    data_dir: Path
    root: str
    concurrency: int = 8
    constrained: bool = False
    split: Split = "test"
    limit: int | None = None
    role: str | None = None  # "base" or "tuned"; defaults to the backend's role
    run_id: str | None = None  # resume (or create) exactly this run
    new_run: bool = False  # never resume: always a fresh run
    retry_errors: bool = False  # on resume, ask again the photos whose last record is an error
    timeout_s: float = 60.0
    attempts: int = 3
    max_image_side: int = 896


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for progress bars: photos with a record out of the photos in the run."""

    run_id: str
    done: int
    total: int
    errors: int
    correct: int
    elapsed_s: float


@dataclass(frozen=True)
class EvalResult:
    """What one session did (`asked` this time, `skipped` as already recorded) and the run's figures."""

    run_id: str
    run_url: str
    resumed: bool
    asked: int
    skipped: int
    torn_repaired: bool
    complete: bool
    wall_s: float
    metrics: RunMetrics
    unlabelled: int


def _prepare(photo: Photo, max_side: int) -> bytes:
    return prepare_jpeg(photo.path.read_bytes(), max_side=max_side)


def _find_run(store: Store, wanted: RunInfo) -> RunInfo | None:
    """The newest unfinished run that asked the same question, to resume."""
    for info in list_runs(store):
        if info.finished_unix_s is None and info.same_question(wanted):
            return info
    return None


def _open_run(store: Store, options: EvalOptions, photos: PhotoSet) -> tuple[RunInfo, bool]:
    backend = options.backend
    fresh = RunInfo(
        run_id=options.run_id or new_run_id(backend.name), backend=backend.name, model=backend.model,
        url=backend.base_url, role=options.role or backend.role, constrained=options.constrained,
        split=options.split, data_dir=str(Path(options.data_dir).resolve()), photo_count=len(photos.photos),
        concurrency=options.concurrency, limit=options.limit, git_commit=git_commit(),
    )
    if options.run_id:
        if not has_run(store, options.run_id):
            return fresh, False
        existing = read_info(store, options.run_id)
        if not existing.same_question(fresh):
            raise UserError(f"run {options.run_id} asked another question ({existing.backend}, {existing.split}, "
                            f"{existing.data_dir}); start a new run instead of resuming it")
        return existing, True
    if not options.new_run:
        unfinished = _find_run(store, fresh)
        if unfinished is not None:
            return unfinished, True
    return fresh, False


async def evaluate(options: EvalOptions, *, progress: Callable[[Progress], None] | None = None,
                   stop: threading.Event | None = None) -> EvalResult:
    """Ask every missing photo of the run, append a record per answer, and return the run's figures."""
    if options.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {options.concurrency}")
    photo_set = select_photos(options.data_dir, options.split, options.limit)
    store = Store(options.root)
    store.check_writable()
    info, resumed = _open_run(store, options, photo_set)
    prior = read_records(store, info.run_id) if resumed else None
    records = list(prior.records) if prior else []
    latest = {r.photo_id: r for r in records}
    keep = {p.id for p in photo_set.photos}
    skip = {pid for pid, r in latest.items() if pid in keep and (r.ok or not options.retry_errors)}
    todo = [p for p in photo_set.photos if p.id not in skip]
    info = replace(info, sessions=info.sessions + (1 if resumed else 0))
    write_info(store, info)

    state = {"errors": sum(1 for pid in skip if not latest[pid].ok),
             "correct": sum(1 for pid in skip if latest[pid].correct), "done": len(skip)}
    start = time.perf_counter()
    writer = RecordWriter(store, info.run_id, good_bytes=prior.good_bytes if prior and prior.torn else None)
    semaphore = asyncio.Semaphore(options.concurrency)
    retry = RetryPolicy(max_attempts=options.attempts, deadline_s=options.timeout_s * options.attempts + 30)

    async def ask(client: BackendClient, photo: Photo) -> None:
        async with semaphore:
            if stop is not None and stop.is_set():
                return
            try:
                jpeg = await asyncio.to_thread(_prepare, photo, options.max_image_side)
            except (ImageError, OSError) as exc:
                record = EvalRecord(photo.id, photo.breed, UNKNOWN, "", 0.0, 0, f"cannot read the photo: {exc}",
                                    "image", None, None, time.time())
            else:
                p = await client.classify(jpeg, constrained=options.constrained, prepared=True)
                record = EvalRecord(photo.id, photo.breed, p.breed, p.raw, p.latency_ms, p.attempts, p.error,
                                    p.error_kind, p.status, p.ttfb_ms, time.time())
        writer.write(record)
        latest[photo.id] = record
        state["done"] += 1
        state["errors"] += 0 if record.ok else 1
        state["correct"] += 1 if record.correct else 0
        if progress is not None:
            progress(Progress(info.run_id, state["done"], len(photo_set.photos), state["errors"], state["correct"],
                              time.perf_counter() - start))

    try:
        if progress is not None:
            progress(Progress(info.run_id, state["done"], len(photo_set.photos), state["errors"], state["correct"],
                              0.0))
        async with make_http_client(max_connections=options.concurrency, timeout_s=options.timeout_s) as http:
            client = BackendClient(options.backend, http=http, retry=retry, timeout_s=options.timeout_s,
                                   max_image_side=options.max_image_side)
            await asyncio.gather(*(ask(client, photo) for photo in todo))
    finally:
        writer.close()
        wall_s = time.perf_counter() - start
        complete = all(pid in latest for pid in keep)
        write_info(store, finished(info, wall_s=wall_s, complete=complete))
    answered = [latest[p.id] for p in photo_set.photos if p.id in latest]
    return EvalResult(
        run_id=info.run_id, run_url=store.url(EVALS, info.run_id), resumed=resumed, asked=writer.written,
        skipped=len(skip), torn_repaired=bool(prior and prior.torn), complete=complete, wall_s=wall_s,
        metrics=summarize(answered), unlabelled=photo_set.unlabelled,
    )


def run_evaluation(options: EvalOptions, *, progress: Callable[[Progress], None] | None = None,
                   stop: threading.Event | None = None) -> EvalResult:
    """`evaluate` for synchronous callers (the CLI, a page's background thread)."""
    return asyncio.run(evaluate(options, progress=progress, stop=stop))


def evaluation_job(options: EvalOptions) -> Job[EvalResult]:
    """The evaluation as a background job (named after the backend): progress is a `Progress`; `stop()` asks
    no more photos, leaving the run unfinished and resumable (the stopped job's result says how far it got)."""
    return Job(options.backend.name,
               lambda control: run_evaluation(options, progress=control.report, stop=control.stop_event))
