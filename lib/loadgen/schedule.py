"""What to send and when: seeded arrival schedules computed before the clock starts.

Arrivals are offsets in seconds from the run's start. Constant and Poisson schedules are built the
same way: unit-rate event positions (evenly spaced, or gamma gaps where burstiness 1 is Poisson)
mapped through the inverse of the cumulative rate, so a linear ramp is exact for both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from lib.errors import UserError

__all__ = [
    "Mode", "MODES", "MAX_SCHEDULED", "Ramp", "LoadProfile", "parse_ramp", "arrival_offsets_s", "task_share",
    "concurrency_share", "rate_at_rps",
]

Mode = Literal["constant", "poisson", "concurrency"]
MODES: tuple[Mode, ...] = get_args(Mode)
MAX_SCHEDULED = 20_000_000  # about 1.3 GB of float64 offsets would be absurd: refuse earlier


@dataclass(frozen=True)
class Ramp:
    """Rate goes linearly from `from_rps` to `to_rps` over `over_s`, then stays at `to_rps`."""

    from_rps: float
    to_rps: float
    over_s: float

    def __post_init__(self) -> None:
        text = f"linear:{self.from_rps:g}:{self.to_rps:g}:{self.over_s:g}"
        if not all(math.isfinite(v) for v in (self.from_rps, self.to_rps, self.over_s)):
            raise UserError(f"bad ramp {text}: use finite numbers")
        if self.from_rps < 0 or self.to_rps < 0 or (self.from_rps == 0 and self.to_rps == 0):
            raise UserError(f"bad ramp {text}: rates must be >= 0 and not both 0")
        if not self.over_s > 0:
            raise UserError(f"bad ramp {text}: SECONDS must be > 0")


def parse_ramp(text: str) -> Ramp:
    """`linear:FROM:TO:SECONDS` -> Ramp; e.g. `linear:5:100:60`."""
    m = re.fullmatch(r"linear:([0-9.eE+-]+):([0-9.eE+-]+):([0-9.eE+-]+)", text.strip())
    if not m:
        raise UserError(f"bad ramp {text!r}: expected linear:FROM:TO:SECONDS, e.g. linear:5:100:60")
    try:
        start, end, over = (float(g) for g in m.groups())
    except ValueError:
        raise UserError(f"bad ramp {text!r}: FROM, TO and SECONDS must be numbers") from None
    return Ramp(start, end, over)


@dataclass(frozen=True)
class LoadProfile:
    """A load shape: open-loop (constant, poisson) at `rate_rps` or a ramp, or closed-loop `concurrency`.

    Warm-up comes first (at the starting rate) and is excluded from the summary; `duration_s` follows.
    """

    mode: Mode = "poisson"
    rate_rps: float | None = None
    ramp: Ramp | None = None
    concurrency: int | None = None
    duration_s: float = 60.0
    warmup_s: float = 0.0
    max_requests: int | None = None
    seed: int = 0
    burstiness: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}: use constant, poisson or concurrency")
        if (
            not (isinstance(self.duration_s, (int, float)) and math.isfinite(self.duration_s))
            or self.duration_s <= 0
        ):
            raise UserError(f"duration must be a positive number of seconds, got {self.duration_s}")
        if self.warmup_s < 0:
            raise UserError(f"warm-up must be >= 0 seconds, got {self.warmup_s}")
        if self.max_requests is not None and self.max_requests <= 0:
            raise UserError(f"max requests must be > 0, got {self.max_requests}")
        if self.burstiness <= 0:
            raise UserError(f"burstiness must be > 0 (1 is Poisson), got {self.burstiness}")
        if self.mode == "concurrency":
            if not self.concurrency or self.concurrency <= 0:
                raise UserError("mode concurrency needs --concurrency C with C > 0")
            return
        if self.ramp is None and (self.rate_rps is None or not math.isfinite(self.rate_rps) or self.rate_rps <= 0):
            raise UserError(f"the rate must be > 0 requests/s (got {self.rate_rps}); or give --ramp")
        expected = self.expected_requests()
        if expected > MAX_SCHEDULED:
            raise UserError(f"that schedule has ~{expected:,.0f} requests; the limit is {MAX_SCHEDULED:,}")

    @property
    def open_loop(self) -> bool:
        return self.mode != "concurrency"

    @property
    def total_s(self) -> float:
        return self.warmup_s + self.duration_s

    def expected_requests(self) -> float:
        """Requests the schedule should hold (warm-up included), before `max_requests`."""
        return _cumulative(self, self.total_s)


def rate_at_rps(profile: LoadProfile, t_s: float) -> float:
    """Target rate at `t_s` seconds after the start (warm-up runs at the starting rate)."""
    u = max(0.0, t_s - profile.warmup_s)
    if profile.ramp is None:
        return float(profile.rate_rps or 0.0)
    r = profile.ramp
    if u >= r.over_s:
        return r.to_rps
    return r.from_rps + (r.to_rps - r.from_rps) * u / r.over_s


def _cumulative(profile: LoadProfile, t_s: float) -> float:
    """Expected arrivals in [0, t_s): the integral of the rate."""
    w = profile.warmup_s
    if profile.ramp is None:
        return float(profile.rate_rps or 0.0) * t_s
    r = profile.ramp
    if t_s <= w:
        return r.from_rps * t_s
    u = t_s - w
    slope = (r.to_rps - r.from_rps) / r.over_s
    in_ramp = min(u, r.over_s)
    total = r.from_rps * w + r.from_rps * in_ramp + slope * in_ramp**2 / 2
    if u > r.over_s:
        total += r.to_rps * (u - r.over_s)
    return total


def _inverse_cumulative(profile: LoadProfile, lam: np.ndarray) -> np.ndarray:
    """Times at which the cumulative rate reaches each value of `lam` (vectorised)."""
    if profile.ramp is None:
        assert profile.rate_rps is not None  # __post_init__: an open-loop profile has a rate or a ramp
        return lam / float(profile.rate_rps)
    r, w = profile.ramp, profile.warmup_s
    out = np.empty_like(lam)
    lam_w = r.from_rps * w
    lam_r = _cumulative(profile, w + r.over_s)
    in_warm = lam < lam_w
    in_ramp = (lam >= lam_w) & (lam < lam_r)
    after = lam >= lam_r
    if r.from_rps > 0:
        out[in_warm] = lam[in_warm] / r.from_rps
    else:
        out[in_warm] = 0.0
    slope = (r.to_rps - r.from_rps) / r.over_s
    x = lam[in_ramp] - lam_w
    if abs(slope) < 1e-12:
        out[in_ramp] = w + x / r.from_rps
    else:
        # from*u + slope*u^2/2 = x  ->  u = (-from + sqrt(from^2 + 2*slope*x)) / slope
        disc = np.maximum(r.from_rps**2 + 2 * slope * x, 0.0)
        out[in_ramp] = w + (np.sqrt(disc) - r.from_rps) / slope
    if r.to_rps > 0:
        out[after] = w + r.over_s + (lam[after] - lam_r) / r.to_rps
    else:
        out[after] = np.inf
    return out


def arrival_offsets_s(profile: LoadProfile) -> np.ndarray:
    """The whole run's send times (seconds from start, sorted), seeded and reproducible."""
    if not profile.open_loop:
        raise ValueError("a closed-loop (concurrency) profile has no arrival schedule")
    total = _cumulative(profile, profile.total_s)
    if profile.mode == "constant":
        lam = np.arange(0.0, total, 1.0)
    else:
        rng = np.random.default_rng(profile.seed)
        n = int(total + 6 * math.sqrt(total + 1) + 16)
        shape = profile.burstiness
        gaps = rng.gamma(shape, 1.0 / shape, size=n)
        lam = np.cumsum(gaps)
        while lam[-1] < total:  # rare: draw more until the horizon is covered
            more = np.cumsum(rng.gamma(shape, 1.0 / shape, size=n)) + lam[-1]
            lam = np.concatenate([lam, more])
        lam = lam[lam < total]
    times = _inverse_cumulative(profile, lam)
    times = times[times < profile.total_s]
    if profile.max_requests is not None:
        times = times[: profile.max_requests]
    return times


def task_share(offsets_s: np.ndarray, task_index: int, task_count: int) -> np.ndarray:
    """Task `task_index` of `task_count` sends every `task_count`-th arrival, so the union is the schedule."""
    if task_count < 1 or not 0 <= task_index < task_count:
        raise UserError(f"task index {task_index} is outside 0..{task_count - 1} (task count {task_count})")
    return offsets_s[task_index::task_count]


def concurrency_share(concurrency: int, task_index: int, task_count: int) -> int:
    """Workers for one task when `concurrency` closed-loop workers are split across tasks."""
    if task_count < 1 or not 0 <= task_index < task_count:
        raise UserError(f"task index {task_index} is outside 0..{task_count - 1} (task count {task_count})")
    return concurrency // task_count + (1 if task_index < concurrency % task_count else 0)
