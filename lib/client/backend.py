"""The one backend client: image in, breed out, over the OpenAI-compatible Chat Completions API.

It never raises for a failed request: failures come back as a `Prediction` with `error` set, so
pages, the evaluation harness and the load generator can count them instead of crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from lib.breeds import BREED_IDS, UNKNOWN, parse_breed
from lib.client.idtokens import GoogleIdTokens
from lib.images import ImageError, jpeg_data_uri, prepare_jpeg
from lib.registry import Backend

__all__ = [
    "PROMPT",
    "Prediction",
    "RetryPolicy",
    "BackendClient",
    "TokenProvider",
    "make_http_client",
    "chat_request",
    "breed_response_format",
    "ask_all",
    "classify_many",
    "classify_sync",
    "Health",
    "probe_health",
    "check_health",
]

PROMPT = (
    "What breed is the pet in this photo? It is one of the 37 Oxford-IIIT Pet breeds. "
    "Answer with the breed name only."
)

TokenProvider = Callable[[str], Awaitable[str]]


def breed_response_format() -> dict[str, Any]:
    """The constrained answer: a JSON object whose `breed` is one of the 37 breed ids."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "breed",
            "schema": {
                "type": "object",
                "properties": {"breed": {"type": "string", "enum": list(BREED_IDS)}},
                "required": ["breed"],
            },
        },
    }


def chat_request(model: str, jpeg: bytes, *, constrained: bool = False, max_tokens: int = 32) -> dict[str, Any]:
    """The Chat Completions body for one photo, as every backend receives it."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": jpeg_data_uri(jpeg)}},
                    {"type": "text", "text": PROMPT},
                ],
            }
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if constrained:
        body["response_format"] = breed_response_format()
    return body


@dataclass(frozen=True)
class Prediction:
    """One answer from one backend; `error` is set (and `breed` is unknown) when it failed."""

    backend: str
    model: str
    breed: str
    raw: str
    latency_ms: float
    ttfb_ms: float | None
    attempts: int
    status: int | None = None
    error: str | None = None
    error_kind: str | None = None  # connect, timeout, cold_start, rate_limited, http, bad_response, image

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for connection errors and 429/502/503/504 (a cold-starting Cloud Run service)."""

    deadline_s: float = 120.0
    max_attempts: int = 8
    connect_attempts: int = 3  # a refused connection is a server that is down, rarely a cold start
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`: Retry-After if given, else full-jitter backoff."""
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_max_s)
            except ValueError:
                pass
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


def make_http_client(max_connections: int = 64, timeout_s: float = 60.0) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport, which holds up at high concurrency (see ARCHITECTURE)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
    )


class BackendClient:
    """Talks to one backend. Use as `async with BackendClient(backend) as client: ...`."""

    def __init__(
        self,
        backend: Backend,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = 60.0,
        max_image_side: int = 896,
        token_provider: TokenProvider | None = None,
    ) -> None:
        self.backend = backend
        self.retry = retry
        self.timeout_s = timeout_s
        self.max_image_side = max_image_side
        self._own_http = http is None
        self._http = http or make_http_client(timeout_s=timeout_s)
        self._own_tokens = GoogleIdTokens() if token_provider is None and backend.auth == "google-id-token" else None
        self._token_provider = self._own_tokens or token_provider

    async def __aenter__(self) -> "BackendClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()
        if self._own_tokens is not None:
            self._own_tokens.close()

    @property
    def base_url(self) -> str:
        return self.backend.base_url.rstrip("/")

    async def auth_headers(self) -> dict[str, str]:
        """The Authorization header this backend needs (empty when none)."""
        auth = self.backend.auth
        if auth == "bearer-env":
            token = os.environ.get(self.backend.token_env or "", "")
            if not token:
                raise PermissionError(f"environment variable {self.backend.token_env} is not set")
            return {"Authorization": f"Bearer {token}"}
        if auth == "google-id-token" and self._token_provider is not None:
            audience = self.base_url.removesuffix("/v1")  # Cloud Run wants the service URL as audience
            return {"Authorization": f"Bearer {await self._token_provider(audience)}"}
        return {}

    async def classify(self, image: bytes, *, constrained: bool = False, prepared: bool = False) -> Prediction:
        """Ask the backend for the breed in `image`; `prepared=True` skips re-encoding a ready JPEG."""
        start = time.perf_counter()
        try:
            jpeg = image if prepared else prepare_jpeg(image, max_side=self.max_image_side)
        except ImageError as exc:
            return self._failure(str(exc), "image", start, attempts=0)
        return await self.send(chat_request(self.backend.model, jpeg, constrained=constrained), start=start)

    async def send(self, body: dict[str, Any], *, start: float | None = None) -> Prediction:
        """POST a prepared Chat Completions body with retries; never raises."""
        start = time.perf_counter() if start is None else start
        deadline = start + self.retry.deadline_s
        url = f"{self.base_url}/chat/completions"
        payload = json.dumps(body).encode()
        attempt = 0
        last_error, last_kind, last_status = "no attempt made", "connect", None
        while attempt < self.retry.max_attempts:
            attempt += 1
            retry_after = None
            try:
                headers = {"Content-Type": "application/json", **await self.auth_headers()}
                remaining = max(0.1, deadline - time.perf_counter())
                sent = time.perf_counter()
                async with self._http.stream(
                    "POST", url, content=payload, headers=headers, timeout=min(self.timeout_s, remaining)
                ) as response:
                    ttfb_ms = (time.perf_counter() - sent) * 1000
                    data = await response.aread()
                status = response.status_code
                if status == 200:
                    return self._success(data, start, ttfb_ms, attempt)
                last_status = status
                last_error, last_kind = _http_error(status, data)
                if status not in self.retry.retry_statuses:
                    break
                retry_after = response.headers.get("retry-after")
            except PermissionError as exc:
                last_error, last_kind = f"credentials: {exc}", "auth"
                break
            except httpx.TransportError as exc:
                last_error, last_kind = self._transport_error(exc)
                if last_kind == "connect" and attempt >= self.retry.connect_attempts:
                    break
            except Exception as exc:  # e.g. google-auth failures: recorded, never raised
                last_error, last_kind = f"{type(exc).__name__}: {exc}", "client"
                break
            wait = self.retry.delay(attempt, retry_after)
            if attempt >= self.retry.max_attempts or time.perf_counter() + wait > deadline:
                break
            await asyncio.sleep(wait)
        return self._failure(last_error, last_kind, start, attempts=attempt, status=last_status)

    def _transport_error(self, exc: httpx.TransportError) -> tuple[str, str]:
        # The aiohttp transport reports a refused connection as ConnectTimeout; its cause tells the truth.
        if isinstance(exc, httpx.ConnectError) or isinstance(exc.__cause__, aiohttp.ClientConnectorError):
            return f"cannot connect to {self.base_url}: {exc.__cause__ or exc or type(exc).__name__}", "connect"
        if isinstance(exc, httpx.TimeoutException):
            return f"no answer within {self.timeout_s:g} s", "timeout"
        return f"connection to {self.base_url} failed: {exc or type(exc).__name__}", "connect"

    def _success(self, data: bytes, start: float, ttfb_ms: float, attempts: int) -> Prediction:
        latency_ms = (time.perf_counter() - start) * 1000
        try:
            raw = json.loads(data)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            return Prediction(
                self.backend.name, self.backend.model, UNKNOWN, data[:200].decode("utf-8", "replace"),
                latency_ms, ttfb_ms, attempts, 200, "the backend's answer is not a chat completion", "bad_response",
            )
        return Prediction(self.backend.name, self.backend.model, parse_breed(raw), raw, latency_ms, ttfb_ms,
                          attempts, 200)

    def _failure(self, error: str, kind: str, start: float, *, attempts: int, status: int | None = None) -> Prediction:
        latency_ms = (time.perf_counter() - start) * 1000
        return Prediction(self.backend.name, self.backend.model, UNKNOWN, "", latency_ms, None, attempts, status,
                          error, kind)

    async def list_models(self) -> list[str]:
        """Model ids served at `/v1/models`; raises `httpx.HTTPError` on failure."""
        response = await self._http.get(f"{self.base_url}/models", headers=await self.auth_headers(), timeout=10.0)
        response.raise_for_status()
        return [m["id"] for m in response.json().get("data", [])]


def _http_error(status: int, body: bytes) -> tuple[str, str]:
    message = body[:300].decode("utf-8", "replace")
    with contextlib.suppress(ValueError, KeyError, TypeError):  # not an OpenAI error body: keep its start
        message = json.loads(body)["error"]["message"]
    if status == 429:
        return f"rate limited (429): {message}", "rate_limited"
    if status in (502, 503, 504):
        return f"backend unavailable or cold-starting ({status}): {message}", "cold_start"
    return f"HTTP {status}: {message}", "http"


async def ask_all(clients: Iterable[BackendClient], image: bytes, *, constrained: bool = False,
                  max_image_side: int = 896) -> list[Prediction]:
    """The same photo to several backends at once, prepared once; order kept, never raises."""
    clients = list(clients)
    try:
        jpeg = prepare_jpeg(image, max_side=max_image_side)
    except ImageError as exc:
        return [Prediction(c.backend.name, c.backend.model, UNKNOWN, "", 0.0, None, 0, None, str(exc), "image")
                for c in clients]
    return list(await asyncio.gather(*(c.classify(jpeg, constrained=constrained, prepared=True) for c in clients)))


async def classify_many(
    backends: Iterable[Backend], image: bytes, *, constrained: bool = False, max_image_side: int = 896,
    retry: RetryPolicy = DEFAULT_RETRY, timeout_s: float = 60.0,
) -> list[Prediction]:
    """`ask_all` with throwaway clients (scripts, tests); pages keep theirs in a `ClientPool`."""
    async with make_http_client(timeout_s=timeout_s) as http:
        clients = [BackendClient(b, http=http, retry=retry, timeout_s=timeout_s) for b in backends]
        try:
            return await ask_all(clients, image, constrained=constrained, max_image_side=max_image_side)
        finally:
            for c in clients:
                await c.aclose()


def classify_sync(backends: Iterable[Backend], image: bytes, **kwargs: Any) -> list[Prediction]:
    """`classify_many` for synchronous callers such as Streamlit pages."""
    return asyncio.run(classify_many(backends, image, **kwargs))


@dataclass(frozen=True)
class Health:
    """Whether a backend answers `/v1/models` and lists its model."""

    backend: str
    ok: bool
    latency_ms: float
    status: int | None
    error: str | None


async def probe_health(client: BackendClient, timeout_s: float = 3.0) -> Health:
    """Whether one backend answers `/v1/models` within `timeout_s` and lists its model; never raises."""
    start = time.perf_counter()
    name = client.backend.name
    try:
        models = await asyncio.wait_for(client.list_models(), timeout_s)
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        hint = " (cold-starting?)" if code in (502, 503, 504) else ""
        return Health(name, False, _ms(start), code, f"HTTP {code}{hint}")
    except (httpx.HTTPError, asyncio.TimeoutError, OSError) as exc:
        refused = isinstance(exc, httpx.ConnectError) or isinstance(exc.__cause__, aiohttp.ClientConnectorError)
        timed_out = isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError))
        why = "connection refused" if refused else "no answer" if timed_out else type(exc).__name__
        return Health(name, False, _ms(start), None, f"not reachable at {client.base_url} ({why})")
    except Exception as exc:  # credentials and the like: shown, not raised
        return Health(name, False, _ms(start), None, f"{type(exc).__name__}: {exc}")
    if client.backend.model not in models:
        return Health(name, False, _ms(start), 200, f"server does not list model {client.backend.model!r}")
    return Health(name, True, _ms(start), 200, None)


async def check_health(backends: Iterable[Backend], timeout_s: float = 3.0) -> list[Health]:
    """Probe every backend's `/v1/models` in parallel with throwaway clients; order kept, never raises.

    Callers that probe again and again (pages) use `ClientPool.health`, which keeps its clients.
    """
    async with make_http_client(timeout_s=timeout_s) as http:
        clients = [BackendClient(b, http=http) for b in backends]
        try:
            return list(await asyncio.gather(*(probe_health(c, timeout_s) for c in clients)))
        finally:
            for c in clients:
                await c.aclose()


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
