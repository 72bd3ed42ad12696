"""Cold start: time to first byte and to a complete answer for the first request to an idle service,
then for a warm one, through the one backend client; results are stored as `coldstart/<run_id>.json` in the
results store (`lib.store`: a folder or a bucket, so a hosted dashboard shows the history too).

The first request of a service scaled to zero is answered 503/429 (or held) while an instance
starts and loads the model; `BackendClient` retries those with a generous policy, so the figures
cover the whole wait. "First byte" is when the headers of the successful answer arrived, measured
with an httpx response hook (per-attempt TTFB in `Prediction` would hide the earlier attempts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from dataclasses import asdict, dataclass, fields

import httpx

from lib.client import BackendClient, Prediction, RetryPolicy, TokenProvider, chat_request, make_http_client
from lib.images import prepare_jpeg
from lib.registry import Auth, Backend
from lib.settings import Settings, load_settings
from lib.store import COLDSTART, Store, new_run_id

__all__ = [
    "ColdStartResult", "COLD_START_RETRY", "measure_cold_start", "measure_cold_start_sync", "save_cold_start",
    "load_cold_starts",
]

# Model loading on a GPU can take minutes: retry 429/5xx for up to 15 minutes.
COLD_START_RETRY = RetryPolicy(deadline_s=900.0, max_attempts=1000, backoff_initial_s=0.5, backoff_max_s=5.0)


@dataclass(frozen=True)
class ColdStartResult:
    """First (cold) and second (warm) request to one backend; times in milliseconds from sending."""

    backend: str
    base_url: str
    model: str
    measured_at: str
    cold_ttfb_ms: float | None
    cold_total_ms: float
    cold_attempts: int
    warm_ttfb_ms: float | None
    warm_total_ms: float | None
    answer: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _as_backend(target: Backend | str, model: str | None) -> Backend:
    if isinstance(target, Backend):
        return target if not model or model == target.model else target.model_copy(update={"model": model})
    if not model:
        raise ValueError("a URL needs the model name to ask for")
    url = target.rstrip("/")
    base_url = url if url.endswith("/v1") else url + "/v1"
    host = re.sub(r"^https?://", "", url).split("/")[0]
    auth: Auth = "google-id-token" if host.endswith(".run.app") else "none"
    return Backend(name=re.sub(r"[^A-Za-z0-9._:/-]", "-", host) or "url", base_url=base_url, model=model,
                   family="openai", auth=auth)


async def _timed(client: BackendClient, body: dict, marks: dict[str, float]) -> tuple[float, float | None, Prediction]:
    marks.clear()
    start = time.perf_counter()
    prediction = await client.send(body, start=start)
    total_ms = (time.perf_counter() - start) * 1000
    ttfb_ms = (marks["first_byte"] - start) * 1000 if prediction.ok and "first_byte" in marks else None
    return total_ms, ttfb_ms, prediction


async def measure_cold_start(
    target: Backend | str, model: str | None, image_bytes: bytes, *, retry: RetryPolicy = COLD_START_RETRY,
    timeout_s: float = 600.0, token_provider: TokenProvider | None = None, max_image_side: int = 896,
) -> ColdStartResult:
    """Send the same photo twice (cold, then warm) and time both; never raises for a failed request."""
    backend = _as_backend(target, model)
    jpeg = prepare_jpeg(image_bytes, max_side=max_image_side)
    body = chat_request(backend.model, jpeg)
    marks: dict[str, float] = {}

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 200 and "first_byte" not in marks:
            marks["first_byte"] = time.perf_counter()

    measured_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    http = make_http_client(max_connections=2, timeout_s=timeout_s)
    http.event_hooks["response"].append(on_response)
    try:
        client = BackendClient(backend, http=http, retry=retry, timeout_s=timeout_s, token_provider=token_provider,
                               max_image_side=max_image_side)
        cold_ms, cold_ttfb, cold = await _timed(client, body, marks)
        warm_ms = warm_ttfb = None
        error = cold.error
        if cold.ok:
            warm_ms, warm_ttfb, warm = await _timed(client, body, marks)
            error = None if warm.ok else f"warm request: {warm.error}"
    finally:
        await http.aclose()
    return ColdStartResult(
        backend=backend.name, base_url=backend.base_url, model=backend.model, measured_at=measured_at,
        cold_ttfb_ms=cold_ttfb, cold_total_ms=cold_ms, cold_attempts=cold.attempts,
        warm_ttfb_ms=warm_ttfb, warm_total_ms=warm_ms, answer=cold.raw, error=error,
    )


def _run_id(result: ColdStartResult) -> str:
    try:
        when = dt.datetime.fromisoformat(result.measured_at).timestamp()
    except ValueError:
        when = None
    return new_run_id(result.backend, now=when)


def save_cold_start(result: ColdStartResult, settings: Settings | None = None, *, store: Store | None = None) -> str:
    """Store the result as `coldstart/<run_id>.json` in the results store; returns its address."""
    store = store or Store((settings or load_settings()).results_root)
    run_id = _run_id(result)
    store.write_json(asdict(result), COLDSTART, f"{run_id}.json")
    return store.url(COLDSTART, f"{run_id}.json")


def load_cold_starts(settings: Settings | None = None, *, store: Store | None = None) -> list[ColdStartResult]:
    """Every stored cold-start result, newest first (a folder or a bucket); a store that cannot be read (a
    missing bucket) is a UserError, files that are not ours are skipped."""
    store = store or Store((settings or load_settings()).results_root)
    known = {f.name for f in fields(ColdStartResult)}
    results = []
    for name in store.listdir(COLDSTART):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            raw = store.read_json(COLDSTART, name)
            results.append(ColdStartResult(**{k: v for k, v in raw.items() if k in known}))
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            continue  # a file that is not ours
    return sorted(results, key=lambda r: r.measured_at, reverse=True)


def measure_cold_start_sync(
    target: Backend | str, model: str | None, image_bytes: bytes, *, retry: RetryPolicy = COLD_START_RETRY,
    timeout_s: float = 600.0, token_provider: TokenProvider | None = None, max_image_side: int = 896,
) -> ColdStartResult:
    """`measure_cold_start` for synchronous callers (CLI, Streamlit)."""
    return asyncio.run(measure_cold_start(target, model, image_bytes, retry=retry, timeout_s=timeout_s,
                                          token_provider=token_provider, max_image_side=max_image_side))
