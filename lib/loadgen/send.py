"""What one send comes to: the `SendResult` every sender returns, and the `Sender` seam itself.

Senders never raise: a failure is a result with `error` and `error_kind` set, so the engine records
every request the same way whatever the client (raw, aiohttp, httpx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["SendResult", "Sender", "status_error"]


@dataclass(frozen=True, slots=True)  # slots: one is made per request, on the hot path
class SendResult:
    """One POST: `first_byte_s` is the `perf_counter()` reading when the answer's first byte came (None if none)."""

    first_byte_s: float | None
    status: int | None
    response_bytes: int
    error: str | None = None
    error_kind: str | None = None  # connect, timeout, http, rate_limited, cold_start, client

    @property
    def ok(self) -> bool:
        return self.error is None


class Sender(Protocol):
    """POSTs ready bodies to one URL; `send` never raises (except on cancellation)."""

    async def send(self, body: bytes) -> SendResult: ...

    async def aclose(self) -> None: ...


def status_error(status: int) -> tuple[str, str]:
    """(error, error_kind) for an answer that is not 200; 429 and 502-504 get kinds of their own."""
    if status == 429:
        return "rate limited (429)", "rate_limited"
    if status in (502, 503, 504):
        return f"backend unavailable or cold-starting ({status})", "cold_start"
    return f"HTTP {status}", "http"
