"""How to send: open-loop and closed-loop engines whose request functions never raise.

Open loop: the schedule is computed before the clock starts and each arrival is sent on time as
its own task whatever earlier requests are doing (no coordinated omission); the client's own delay
is measured as schedule lag (sent - scheduled). Bodies are encoded before the clock starts and are
byte-identical to what `lib.backends.BackendClient.send` posts (`json.dumps(chat_request(...))`).

The hot path uses aiohttp directly (see benchmarks/loadgen_bench.py for the figures against the
shared httpx client, which is also selectable with `client="httpx"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Literal

import aiohttp
import httpx
import numpy as np

from lib.client import BackendClient, chat_request, make_http_client
from lib.data import image_files
from lib.errors import UserError
from lib.images import ImageError, prepare_jpeg
from lib.jobs import Job, JobControl
from lib.loadgen.rawhttp import RawSender
from lib.loadgen.records import RecordWriter, RequestRecord, RunHeader
from lib.loadgen.schedule import LoadProfile, arrival_offsets_s, concurrency_share, task_share
from lib.loadgen.send import Sender, SendResult, status_error
from lib.loadgen.summary import LoadSummary, summarize
from lib.registry import Backend

__all__ = [
    "Payload",
    "LoadPlan",
    "LoadResult",
    "LoadRun",
    "load_job",
    "prepare_payloads",
    "text_payload",
    "chat_url",
    "backend_headers",
    "run_load",
    "ClientKind",
    "make_sender",
]

ClientKind = Literal["auto", "raw", "aiohttp", "httpx"]
FLUSH_EVERY_S = 0.25


@dataclass(frozen=True)
class Payload:
    """One ready-to-send request body and the name of the photo in it."""

    name: str
    body: bytes


def prepare_payloads(
    images_dir: str | Path,
    model: str,
    *,
    max_side: int = 896,
    constrained: bool = False,
    limit: int | None = None,
) -> list[Payload]:
    """Encode every photo in `images_dir` (flat, or the dataset's `images/`) into a chat-completion body, before
    any clock starts; a missing, empty or half-downloaded folder is a UserError."""
    folder = Path(images_dir)
    files = image_files(folder, limit=limit)
    payloads = []
    skipped = []
    for path in files:
        try:
            jpeg = prepare_jpeg(path.read_bytes(), max_side=max_side)
        except (ImageError, OSError) as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        payloads.append(
            Payload(path.name, json.dumps(chat_request(model, jpeg, constrained=constrained)).encode())
        )
    if not payloads:
        raise UserError(f"no usable photo in {folder}: " + "; ".join(skipped[:3]))
    return payloads


def text_payload(model: str, text: str = "ping") -> Payload:
    """A small text-only chat completion, for measuring the client itself."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 1,
        "temperature": 0,
    }
    return Payload("text", json.dumps(body).encode())


def chat_url(url: str) -> str:
    """`http://host/v1` or a full `.../chat/completions` URL -> the chat completions URL."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"bad URL {url!r}: it must start with http:// or https://")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


async def backend_headers(backend: Backend) -> dict[str, str]:
    """Auth headers for a registry backend, fetched once before the clock (ID tokens last an hour)."""
    async with BackendClient(backend) as client:
        try:
            return await client.auth_headers()  # the one client owns the auth rules
        except PermissionError as exc:
            raise UserError(f"credentials for {backend.name}: {exc}") from None


class AiohttpSender:
    """POSTs with one aiohttp session; never raises (a failure is a `SendResult` with `error` set)."""

    def __init__(self, url: str, headers: dict[str, str], *, max_connections: int, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.headers = {"Content-Type": "application/json", **headers}
        self._connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections)
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            headers=self.headers,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        await self._session.close()

    async def send(self, body: bytes) -> SendResult:
        first_byte = None
        status = None
        try:
            async with self._session.post(self.url, data=body) as resp:
                first_byte = perf_counter()
                status = resp.status
                data = await resp.read()
        except asyncio.TimeoutError:
            return SendResult(first_byte, status, 0, f"no answer within {self.timeout_s:g} s", "timeout")
        except aiohttp.ClientConnectorError as exc:
            return SendResult(None, None, 0, f"cannot connect: {exc}", "connect")
        except (aiohttp.ClientError, OSError) as exc:
            return SendResult(first_byte, status, 0, f"{type(exc).__name__}: {exc}", "connect")
        except Exception as exc:  # recorded, never raised
            return SendResult(first_byte, status, 0, f"{type(exc).__name__}: {exc}", "client")
        if status != 200:
            return SendResult(first_byte, status, len(data), *status_error(status))
        return SendResult(first_byte, status, len(data))


class HttpxSender:
    """The project's shared client (httpx on the aiohttp transport), for comparison and fallback."""

    def __init__(self, url: str, headers: dict[str, str], *, max_connections: int, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.headers = {"Content-Type": "application/json", **headers}
        self._http = make_http_client(max_connections=max_connections, timeout_s=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, body: bytes) -> SendResult:
        first_byte = None
        status = None
        try:
            async with self._http.stream("POST", self.url, content=body, headers=self.headers) as resp:
                first_byte = perf_counter()
                status = resp.status_code
                data = await resp.aread()
        except httpx.ConnectTimeout as exc:  # httpx-aiohttp reports a refused connection as a connect timeout
            return SendResult(None, None, 0, f"cannot connect: {exc or type(exc).__name__}", "connect")
        except httpx.TimeoutException:
            return SendResult(first_byte, status, 0, f"no answer within {self.timeout_s:g} s", "timeout")
        except httpx.TransportError as exc:
            return SendResult(first_byte, status, 0, f"cannot connect: {exc or type(exc).__name__}", "connect")
        except Exception as exc:
            return SendResult(first_byte, status, 0, f"{type(exc).__name__}: {exc}", "client")
        if status != 200:
            return SendResult(first_byte, status, len(data), *status_error(status))
        return SendResult(first_byte, status, len(data))


def make_sender(
    client: ClientKind, url: str, headers: dict[str, str], *, max_connections: int, timeout_s: float
) -> Sender:
    """`auto`: the lean raw client for http://, aiohttp for https:// (TLS); or the one asked for."""
    if client == "auto":
        client = "raw" if url.startswith("http://") else "aiohttp"
    if client == "raw":
        if not url.startswith("http://"):
            raise UserError("the raw client speaks plain http:// only; use --client aiohttp for https://")
        return RawSender(url, headers, max_connections=max_connections, timeout_s=timeout_s)
    cls = AiohttpSender if client == "aiohttp" else HttpxSender
    return cls(url, headers, max_connections=max_connections, timeout_s=timeout_s)


@dataclass(frozen=True)
class LoadPlan:
    """Everything a run needs, decided before the clock starts."""

    url: str
    model: str
    profile: LoadProfile
    payloads: tuple[Payload, ...]
    out_path: Path
    task_index: int = 0
    task_count: int = 1
    timeout_s: float = 60.0
    max_connections: int = 1024
    client: ClientKind = "auto"
    headers: dict[str, str] = field(default_factory=dict)
    young_gc_only: bool = True  # full collections over a growing record list stall the schedule (see bench)
    # Spinning the last 2 ms before each send is exact on an idle core, but on a shared one the scheduler
    # penalises the spinning process: p99 lag 25-680 ms spinning vs 7-47 ms sleeping at 2,000/s on a busy
    # machine; the same (7-12 ms) at 6,500/s on a quieter one.
    spin_wait: bool = False

    def __post_init__(self) -> None:
        if not self.payloads:
            raise UserError("nothing to send: no payloads")
        if self.timeout_s <= 0:
            raise UserError(f"timeout must be > 0 seconds, got {self.timeout_s}")
        if self.task_count < 1 or not 0 <= self.task_index < self.task_count:
            raise UserError(f"task index {self.task_index} is outside 0..{self.task_count - 1}")


@dataclass(frozen=True)
class LoadResult:
    """A finished (or stopped) run: its summary and where its records are."""

    summary: LoadSummary
    records_path: Path
    header: RunHeader


class LoadRun:
    """One run. `await run()` in any event loop; `stop()` from any thread; `records` grows as it goes."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        profile = plan.profile
        self.schedule_s: np.ndarray | None = None
        if profile.open_loop:
            self.schedule_s = task_share(arrival_offsets_s(profile), plan.task_index, plan.task_count)
        self.workers = (
            concurrency_share(profile.concurrency or 0, plan.task_index, plan.task_count)
            if not profile.open_loop
            else 0
        )
        self.records: list[RequestRecord] = []
        self.started_unix_s: float | None = None
        self.elapsed_s = 0.0
        self._start = 0.0
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._issued = 0

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the run to stop: nothing more is sent; in-flight requests are recorded as interrupted."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between: nothing left to wake
                loop.call_soon_threadsafe(wake.set)

    def header(self) -> RunHeader:
        p, plan = self.plan.profile, self.plan
        ramp = None if p.ramp is None else f"linear:{p.ramp.from_rps:g}:{p.ramp.to_rps:g}:{p.ramp.over_s:g}"
        return RunHeader(
            url=plan.url,
            model=plan.model,
            mode=p.mode,
            duration_s=p.duration_s,
            warmup_s=p.warmup_s,
            rate_rps=p.rate_rps,
            ramp=ramp,
            concurrency=p.concurrency,
            planned_requests=None if self.schedule_s is None else int(self.schedule_s.size),
            task_index=plan.task_index,
            task_count=plan.task_count,
            seed=p.seed,
            images=len(plan.payloads),
            start_unix_s=self.started_unix_s or time.time(),
        )

    async def run(self) -> LoadResult:
        """Send the whole load, write every record, and summarise."""
        plan = self.plan
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.started_unix_s = time.time()
        header = self.header()
        try:
            writer = RecordWriter(plan.out_path, header)
        except OSError as exc:
            raise UserError(f"cannot write the records file {plan.out_path}: {exc.strerror or exc}") from None
        sender = make_sender(
            plan.client,
            plan.url,
            plan.headers,
            max_connections=plan.max_connections,
            timeout_s=plan.timeout_s,
        )
        self._start = perf_counter()
        flusher = asyncio.create_task(self._flush_loop(writer))
        in_flight: set[asyncio.Task] = set()
        cancelled = False
        try:
            if plan.profile.open_loop:
                await self._open_loop(sender, writer, in_flight)
            else:
                await self._closed_loop(sender, writer, in_flight)
            await self._drain(in_flight)
        except asyncio.CancelledError:  # Ctrl-C or task cancellation: keep what we have
            cancelled = True
            self._stop.set()
            await self._drain(in_flight)
        finally:
            self.elapsed_s = perf_counter() - self._start
            flusher.cancel()
            writer.close()
            await sender.aclose()
            if plan.young_gc_only:
                gc.unfreeze()
        result = LoadResult(self.summary(), plan.out_path, header)
        if cancelled:
            raise asyncio.CancelledError
        return result

    def summary(self) -> LoadSummary:
        """Figures for the records so far (the whole run once it has finished)."""
        p = self.plan.profile
        stopped = self._stop.is_set()
        measured_s = p.duration_s
        if stopped:
            measured_s = max(1e-9, min(p.duration_s, self.elapsed_s - p.warmup_s))
        target = None
        if self.schedule_s is not None:
            window = self.schedule_s[
                (self.schedule_s >= p.warmup_s) & (self.schedule_s < p.warmup_s + measured_s)
            ]
            target = window.size / measured_s
        return summarize(
            self.records,
            duration_s=measured_s,
            target_rate_rps=target,
            warmup_s=p.warmup_s,
            open_loop=p.open_loop,
            task_count=self.plan.task_count,
            interrupted=stopped,
        )

    async def _flush_loop(self, writer: RecordWriter) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            writer.flush()
            if self.plan.young_gc_only:
                gc.freeze()  # what survived a tick is set aside, so collections never re-scan the records

    async def _one(
        self,
        index: int,
        scheduled_s: float,
        payload: Payload,
        sender: Sender,
        writer: RecordWriter,
        warmup: bool,
    ) -> None:
        t0 = self._start
        sent = perf_counter()
        try:
            result = await sender.send(payload.body)
        except asyncio.CancelledError:
            now = perf_counter() - t0
            record = RequestRecord(
                index,
                scheduled_s,
                sent - t0,
                None,
                now,
                None,
                0,
                "stopped before the answer came",
                "interrupted",
                payload.name,
                warmup,
                self.plan.task_index,
            )
            self.records.append(record)
            writer.add(record)
            raise
        done = perf_counter()
        first_byte = result.first_byte_s
        record = RequestRecord(
            index,
            scheduled_s,
            sent - t0,
            None if first_byte is None else first_byte - t0,
            done - t0,
            result.status,
            result.response_bytes,
            result.error,
            result.error_kind,
            payload.name,
            warmup,
            self.plan.task_index,
        )
        self.records.append(record)
        writer.add(record)

    async def _open_loop(self, sender: Sender, writer: RecordWriter, in_flight: set[asyncio.Task]) -> None:
        assert self.schedule_s is not None and self._wake is not None
        loop = asyncio.get_running_loop()
        schedule = self.schedule_s.tolist()
        payloads = self.plan.payloads
        n_payloads = len(payloads)
        step, first = self.plan.task_count, self.plan.task_index
        warmup_s = self.plan.profile.warmup_s
        t0 = self._start
        n = len(schedule)
        i = 0
        stop = self._stop
        spin = self.plan.spin_wait
        while i < n and not stop.is_set():
            now = perf_counter()
            wait = t0 + schedule[i] - now
            if wait > 0.002:
                # coarse: the selector's timeout is ~1 ms granular, so wake a little early
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait - 0.0015, 0.2))
                continue
            if wait > 0:
                # fine: yield until due (spin), or sleep and accept the selector's ~1 ms granularity
                await asyncio.sleep(0 if spin else wait)
                continue
            while i < n and t0 + schedule[i] <= now:
                index = first + i * step
                task = loop.create_task(
                    self._one(
                        index,
                        schedule[i],
                        payloads[index % n_payloads],
                        sender,
                        writer,
                        schedule[i] < warmup_s,
                    )
                )
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                i += 1

    async def _closed_loop(self, sender: Sender, writer: RecordWriter, in_flight: set[asyncio.Task]) -> None:
        profile = self.plan.profile
        payloads = self.plan.payloads
        limit = profile.max_requests

        async def worker() -> None:
            while not self._stop.is_set():
                now_s = perf_counter() - self._start
                if now_s >= profile.total_s or (limit is not None and self._issued >= limit):
                    return
                index = self._issued
                self._issued += 1
                await self._one(
                    index, now_s, payloads[index % len(payloads)], sender, writer, now_s < profile.warmup_s
                )

        for _ in range(self.workers):
            task = asyncio.create_task(worker())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while in_flight and not self._stop.is_set():
            await asyncio.wait(set(in_flight), timeout=0.2)

    async def _drain(self, in_flight: set[asyncio.Task]) -> None:
        """Wait for in-flight requests (each bounded by the timeout), or cancel them if stopping."""
        deadline = perf_counter() + self.plan.timeout_s + 5
        while in_flight and not self._stop.is_set() and perf_counter() < deadline:
            await asyncio.wait(set(in_flight), timeout=0.2)
        pending = list(in_flight)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def run_load(plan: LoadPlan) -> LoadResult:
    """Run `plan` to the end in the current event loop."""
    return await LoadRun(plan).run()


def load_job(run: LoadRun) -> Job[LoadResult]:
    """`run` as a background job on its own event loop, for pages: read live records from `run.records`;
    `job.stop()` stops the run (nothing more is sent; in-flight requests are recorded as interrupted)."""

    def work(control: JobControl) -> LoadResult:
        control.on_stop(run.stop)
        return asyncio.run(run.run())

    return Job(f"load {run.plan.model}", work)
