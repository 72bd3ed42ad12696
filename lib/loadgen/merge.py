"""Records files back to figures: summarise one file, or merge the files of a multi-task job."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from lib.errors import UserError
from lib.loadgen.records import RequestRecord, RunFile, RunHeader, read_run
from lib.loadgen.schedule import LoadProfile, arrival_offsets_s, parse_ramp, task_share
from lib.loadgen.summary import LoadSummary, summarize

__all__ = ["summarize_file", "merge_files", "measured_window"]


def measured_window(header: RunHeader, records: list[RequestRecord]) -> tuple[float, float | None, bool]:
    """(measured seconds, target requests/s, interrupted) for one task's file."""
    interrupted = any(r.error_kind == "interrupted" for r in records)
    duration = header.duration_s
    if records and interrupted:
        duration = max(1e-9, min(header.duration_s, max(r.done_s for r in records) - header.warmup_s))
    if header.mode == "concurrency" or header.planned_requests is None:
        return duration, None, interrupted
    profile = LoadProfile(
        mode=header.mode,
        rate_rps=header.rate_rps,
        ramp=None if header.ramp is None else parse_ramp(header.ramp),
        duration_s=header.duration_s,
        warmup_s=header.warmup_s,
        seed=header.seed,
    )
    offsets = task_share(arrival_offsets_s(profile), header.task_index, header.task_count)[
        : header.planned_requests
    ]
    window = offsets[(offsets >= header.warmup_s) & (offsets < header.warmup_s + duration)]
    return duration, window.size / duration, interrupted


def summarize_file(path: str | Path) -> LoadSummary:
    """Summarise a records file, finished or not (a torn last line is skipped)."""
    run = read_run(path)
    duration, target, interrupted = measured_window(run.header, run.records)
    return summarize(
        run.records,
        duration_s=duration,
        target_rate_rps=target,
        warmup_s=run.header.warmup_s,
        open_loop=run.header.mode != "concurrency",
        task_count=run.header.task_count,
        interrupted=interrupted,
    )


def merge_files(paths: Iterable[str | Path]) -> tuple[LoadSummary, list[str]]:
    """One summary for the tasks of one job, clocks aligned on each task's wall-clock start; plus notes."""
    runs: list[RunFile] = [read_run(p) for p in paths]
    if not runs:
        raise UserError("merge needs at least one records file")
    first = runs[0].header
    notes: list[str] = []
    for run in runs[1:]:
        h = run.header
        if (h.mode, h.rate_rps, h.ramp, h.concurrency, h.seed, h.task_count, h.duration_s) != (
            first.mode,
            first.rate_rps,
            first.ramp,
            first.concurrency,
            first.seed,
            first.task_count,
            first.duration_s,
        ):
            raise UserError(
                "these files come from different runs (mode, rate, ramp, seed, task count or "
                "duration differ); merge the tasks of one job only"
            )
    indices = [r.header.task_index for r in runs]
    if len(set(indices)) != len(indices):
        raise UserError(f"the same task index appears twice: {sorted(indices)}")
    missing = sorted(set(range(first.task_count)) - set(indices))
    if missing:
        notes.append(f"tasks {missing} of {first.task_count} are missing; figures cover {len(runs)} tasks")
    origin = min(r.header.start_unix_s for r in runs)
    records: list[RequestRecord] = []
    target_total: float | None = 0.0
    duration = 0.0
    interrupted = False
    for run in runs:
        shift = run.header.start_unix_s - origin
        if shift > 1.0:
            notes.append(f"task {run.header.task_index} started {shift:.1f} s after the first")
        task_duration, target, cut = measured_window(run.header, run.records)
        duration = max(duration, task_duration)
        interrupted = interrupted or cut
        target_total = None if target is None or target_total is None else target_total + target
        records += [
            replace(
                r,
                scheduled_s=r.scheduled_s + shift,
                sent_s=r.sent_s + shift,
                first_byte_s=None if r.first_byte_s is None else r.first_byte_s + shift,
                done_s=r.done_s + shift,
            )
            for r in run.records
        ]
        if run.torn_lines:
            notes.append(f"task {run.header.task_index}: skipped a torn last line")
    summary = summarize(
        records,
        duration_s=duration,
        target_rate_rps=target_total,
        warmup_s=first.warmup_s,
        open_loop=first.mode != "concurrency",
        task_count=len(runs),
        interrupted=interrupted,
    )
    return summary, notes
