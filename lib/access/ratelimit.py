"""Token buckets keyed by scope and key (a browser session, a client address): abuse limits for the dashboard.

One `RateLimiter` serves every session of a process (the dashboard keeps it in `st.cache_resource`);
it is thread-safe because Streamlit runs each session's script in its own thread.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["Rate", "Verdict", "RateLimiter"]


@dataclass(frozen=True)
class Rate:
    """`burst` requests at once, refilled at `per_min` requests a minute."""

    per_min: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_min <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_min > 0 and burst >= 1, got {self}")

    @property
    def per_s(self) -> float:
        return self.per_min / 60.0


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go ahead; if not, which scope refused and how long until it may."""

    allowed: bool
    retry_after_s: float = 0.0
    scope: str | None = None

    @property
    def wait_s(self) -> int:
        """Whole seconds to tell a person (at least 1 when refused)."""
        return 0 if self.allowed else max(1, math.ceil(self.retry_after_s))


@dataclass
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter:
    """Token buckets per (scope, key); a request passes only if every scope it names has a token."""

    def __init__(self, rates: Mapping[str, Rate], *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, scope: str, key: str, now: float) -> _Bucket:
        rate = self._rates[scope]
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            bucket = self._buckets[(scope, key)] = _Bucket(float(rate.burst), now)
        else:
            bucket.tokens = min(rate.burst, bucket.tokens + (now - bucket.updated_s) * rate.per_s)
            bucket.updated_s = now
        return bucket

    def _verdict(self, keys: Mapping[str, str], cost: float, now: float) -> Verdict:
        worst: Verdict = Verdict(True)
        for scope, key in keys.items():
            bucket = self._bucket(scope, key, now)
            if bucket.tokens + 1e-9 < cost:
                wait = (cost - bucket.tokens) / self._rates[scope].per_s
                if wait > worst.retry_after_s:
                    worst = Verdict(False, wait, scope)
        return worst

    def check(self, keys: Mapping[str, str], cost: float = 1.0) -> Verdict:
        """Would `take` pass now? Consumes nothing."""
        with self._lock:
            return self._verdict(keys, cost, self._clock())

    def take(self, keys: Mapping[str, str], cost: float = 1.0) -> Verdict:
        """Consume `cost` from every named bucket if all have it; otherwise consume nothing and refuse."""
        with self._lock:
            now = self._clock()
            verdict = self._verdict(keys, cost, now)
            if verdict.allowed:
                for scope, key in keys.items():
                    self._buckets[(scope, key)].tokens -= cost
            self._prune(now)
            return verdict

    def _prune(self, now: float) -> None:
        # Memory stays bounded however many sessions or spoofed addresses arrive: drop buckets
        # that have refilled completely (they are indistinguishable from new ones).
        if len(self._buckets) <= self._max_keys:
            return
        for (scope, key), bucket in list(self._buckets.items()):
            rate = self._rates[scope]
            if bucket.tokens + (now - bucket.updated_s) * rate.per_s >= rate.burst:
                del self._buckets[(scope, key)]
        if len(self._buckets) > self._max_keys:  # still too many: forget the least recently used
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated_s)
            for k in oldest[: len(self._buckets) - self._max_keys]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)
