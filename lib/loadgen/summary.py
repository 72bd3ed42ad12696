"""What a run means: pure functions from request records to figures whose field names carry units.

Latency percentiles are over successful requests only, and the summary says how many failed ones
were left out (`latency_basis`); failures are counted by kind, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from lib.loadgen.records import RequestRecord

__all__ = ["Percentiles", "LoadSummary", "TimelineBin", "summarize", "timeline", "LAG_LIMIT_MS", "RATE_FLOOR"]

LAG_LIMIT_MS = 10.0  # p99 schedule lag above this: the client, not the server, is the bottleneck
RATE_FLOOR = 0.99  # achieved below 99% of target: the run did not deliver the load asked for


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds at the usual percentiles, plus mean, max and how many values."""

    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    count: int


def percentiles(values_ms: Sequence[float] | np.ndarray) -> Percentiles | None:
    """Percentiles of `values_ms`, or None when there are none."""
    arr = np.asarray(values_ms, dtype=float)
    if arr.size == 0:
        return None
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return Percentiles(
        round(float(p50), 3),
        round(float(p90), 3),
        round(float(p95), 3),
        round(float(p99), 3),
        round(float(arr.mean()), 3),
        round(float(arr.max()), 3),
        int(arr.size),
    )


@dataclass(frozen=True)
class LoadSummary:
    """A run's figures; `warnings` say when the client fell behind or the target was missed."""

    requests_sent: int
    requests_ok: int
    requests_failed: int
    requests_interrupted: int
    warmup_excluded: int
    errors_by_kind: dict[str, int]
    error_examples: dict[str, str]
    duration_s: float
    target_rate_rps: float | None
    achieved_rate_rps: float
    achieved_fraction: float | None
    ok_rate_rps: float
    latency_ms: Percentiles | None
    latency_basis: str
    ttfb_ms: Percentiles | None
    schedule_lag_ms: Percentiles | None
    client_behind: bool
    warnings: tuple[str, ...]
    task_count: int = 1
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    records: Iterable[RequestRecord],
    *,
    duration_s: float,
    target_rate_rps: float | None,
    warmup_s: float = 0.0,
    open_loop: bool = True,
    task_count: int = 1,
    interrupted: bool = False,
    lag_limit_ms: float = LAG_LIMIT_MS,
) -> LoadSummary:
    """Summarise the measured (non-warm-up) records of a run of `duration_s` seconds after warm-up."""
    all_records = list(records)
    measured = [r for r in all_records if not r.warmup]
    cut = [r for r in measured if r.error_kind == "interrupted"]
    done = [r for r in measured if r.error_kind != "interrupted"]
    ok = [r for r in done if r.ok]
    failed = [r for r in done if not r.ok]
    sent = len(measured)
    span = duration_s
    if measured:
        span = max(duration_s, max(r.sent_s for r in measured) - warmup_s, 1e-9)
    achieved = sent / span if span > 0 else 0.0
    ok_done = [r for r in ok if r.done_s - warmup_s <= span] if not open_loop else ok
    ok_rate = len(ok_done) / span if span > 0 else 0.0
    fraction = achieved / target_rate_rps if target_rate_rps else None
    lag = percentiles([r.schedule_lag_ms for r in measured]) if open_loop else None
    warnings: list[str] = []
    behind = False
    if lag is not None and lag.p99_ms > lag_limit_ms:
        behind = True
        warnings.append(
            f"the client fell behind its schedule: p99 schedule lag {lag.p99_ms:.1f} ms "
            f"> {lag_limit_ms:.0f} ms; "
            "latencies include client delay; use fewer requests/s per process or split across tasks"
        )
    if fraction is not None and fraction < RATE_FLOOR and not interrupted:
        behind = True
        warnings.append(
            f"achieved {achieved:.1f} requests/s, {fraction:.1%} of the {target_rate_rps:.1f} target"
        )
    if failed:
        warnings.append(
            f"{len(failed)} of {len(done)} requests failed; latency percentiles are over successful ones"
        )
    if cut:
        warnings.append(
            f"{len(cut)} requests were still in flight when the run was stopped (not in latencies)"
        )
    basis = f"successful requests only ({len(ok)}); {len(failed)} failed and {len(cut)} interrupted left out"
    return LoadSummary(
        requests_sent=sent,
        requests_ok=len(ok),
        requests_failed=len(failed),
        requests_interrupted=len(cut),
        warmup_excluded=len(all_records) - len(measured),
        errors_by_kind=dict(sorted(Counter(r.error_kind or "error" for r in failed).items())),
        error_examples={
            k: next(r.error or "" for r in failed if (r.error_kind or "error") == k)
            for k in sorted({r.error_kind or "error" for r in failed})
        },
        duration_s=round(span, 3),
        target_rate_rps=None if target_rate_rps is None else round(target_rate_rps, 3),
        achieved_rate_rps=round(achieved, 3),
        achieved_fraction=None if fraction is None else round(fraction, 4),
        ok_rate_rps=round(ok_rate, 3),
        latency_ms=percentiles([r.latency_ms for r in ok]),
        latency_basis=basis,
        ttfb_ms=percentiles([r.ttfb_ms for r in ok if r.ttfb_ms is not None]),
        schedule_lag_ms=lag,
        client_behind=behind,
        warnings=tuple(warnings),
        task_count=task_count,
        interrupted=interrupted,
    )


@dataclass(frozen=True)
class TimelineBin:
    """One time bin of a run (seconds from start): target, sent, answered, and latency of answers."""

    t_s: float
    target_rps: float | None
    sent_rps: float
    ok_rps: float
    failed_rps: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


def timeline(
    records: Sequence[RequestRecord],
    *,
    bin_s: float = 1.0,
    schedule_offsets_s: np.ndarray | None = None,
    until_s: float | None = None,
) -> list[TimelineBin]:
    """Per-bin rates and latency percentiles; target from the schedule when given. Bins by completion time."""
    ends = [r.done_s for r in records] + [r.sent_s for r in records]
    horizon = until_s if until_s is not None else (max(ends) if ends else 0.0)
    n = max(1, int(np.ceil(horizon / bin_s))) if horizon > 0 else 0
    if n == 0:
        return []
    sent = (
        np.bincount(
            np.clip((np.array([r.sent_s for r in records]) / bin_s).astype(int), 0, n - 1), minlength=n
        )
        if records
        else np.zeros(n, int)
    )
    target = None
    if schedule_offsets_s is not None:
        offs = np.asarray(schedule_offsets_s)
        offs = offs[offs < n * bin_s]
        target = np.bincount((offs / bin_s).astype(int), minlength=n)[:n]
    ok_lat: list[list[float]] = [[] for _ in range(n)]
    failed = np.zeros(n, int)
    for r in records:
        i = min(int(r.done_s / bin_s), n - 1)
        if r.ok:
            ok_lat[i].append(r.latency_ms)
        elif r.error_kind != "interrupted":
            failed[i] += 1
    bins = []
    for i in range(n):
        lat = np.percentile(ok_lat[i], [50, 95, 99]) if ok_lat[i] else None
        bins.append(
            TimelineBin(
                t_s=round(i * bin_s, 3),
                target_rps=None if target is None else float(target[i]) / bin_s,
                sent_rps=float(sent[i]) / bin_s,
                ok_rps=len(ok_lat[i]) / bin_s,
                failed_rps=float(failed[i]) / bin_s,
                latency_p50_ms=None if lat is None else round(float(lat[0]), 3),
                latency_p95_ms=None if lat is None else round(float(lat[1]), 3),
                latency_p99_ms=None if lat is None else round(float(lat[2]), 3),
            )
        )
    return bins
