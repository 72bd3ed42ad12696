"""One `BackendClient` per backend, kept for the life of a process, for synchronous callers such as pages.

A Streamlit rerun is a fresh call on a short-lived thread; a client made per rerun would open a new
connection pool and fetch a new Google ID token every time. The pool runs one event loop on a thread of
its own, keeps one client per backend on it (one shared HTTP connection pool, one ID-token provider that
caches a token per audience), and answers synchronous calls by running coroutines on that loop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Coroutine, Iterable, TypeVar

import httpx

from lib.client.backend import (
    DEFAULT_RETRY,
    BackendClient,
    Health,
    Prediction,
    RetryPolicy,
    TokenProvider,
    ask_all,
    make_http_client,
    probe_health,
)
from lib.client.idtokens import GoogleIdTokens
from lib.registry import Backend

__all__ = ["ClientPool"]

T = TypeVar("T")


class ClientPool:
    """Clients that outlive a call: `pool.classify(backends, photo)`, `pool.health(backends)`, `pool.close()`."""

    def __init__(self, *, max_image_side: int = 896, timeout_s: float = 60.0, max_connections: int = 64,
                 retry: RetryPolicy = DEFAULT_RETRY, token_provider: TokenProvider | None = None) -> None:
        self.max_image_side = max_image_side
        self.timeout_s = timeout_s
        self.retry = retry
        self._max_connections = max_connections
        self._given_tokens = token_provider
        self._tokens: GoogleIdTokens | None = None
        self._clients: dict[Backend, BackendClient] = {}
        self._http: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="client-pool", daemon=True)
        self._thread.start()

    # --- on the pool's loop -----------------------------------------------------------------------

    def _client_on_loop(self, backend: Backend) -> BackendClient:
        client = self._clients.get(backend)
        if client is None:
            if self._http is None:
                self._http = make_http_client(max_connections=self._max_connections, timeout_s=self.timeout_s)
            tokens: TokenProvider | None = self._given_tokens
            if tokens is None and backend.auth == "google-id-token":
                if self._tokens is None:
                    self._tokens = GoogleIdTokens()
                tokens = self._tokens
            client = BackendClient(backend, http=self._http, retry=self.retry, timeout_s=self.timeout_s,
                                   max_image_side=self.max_image_side, token_provider=tokens)
            self._clients[backend] = client
        return client

    async def _classify(self, backends: list[Backend], image: bytes, constrained: bool) -> list[Prediction]:
        clients = [self._client_on_loop(b) for b in backends]
        return await ask_all(clients, image, constrained=constrained, max_image_side=self.max_image_side)

    async def _health(self, backends: list[Backend], timeout_s: float) -> list[Health]:
        clients = [self._client_on_loop(b) for b in backends]
        return list(await asyncio.gather(*(probe_health(c, timeout_s) for c in clients)))

    async def _client(self, backend: Backend) -> BackendClient:
        return self._client_on_loop(backend)

    async def _aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._tokens is not None:
            self._tokens.close()
            self._tokens = None

    # --- from any thread --------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the pool's loop and wait for its result."""
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("the client pool is closed")
            future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout_s)

    def classify(self, backends: Iterable[Backend], image: bytes, *, constrained: bool = False) -> list[Prediction]:
        """One photo to several backends at once through their kept clients; order kept, never raises."""
        return self.run(self._classify(list(backends), image, constrained))

    def health(self, backends: Iterable[Backend], timeout_s: float = 2.0) -> list[Health]:
        """Probe each backend's `/v1/models` through its kept client; order kept, never raises."""
        return self.run(self._health(list(backends), timeout_s))

    def client(self, backend: Backend) -> BackendClient:
        """The kept client for `backend` (made on first use)."""
        return self.run(self._client(backend))

    @property
    def size(self) -> int:
        """How many clients are kept."""
        return len(self._clients)

    def close(self) -> None:
        """Close every client, the shared connections and the token provider, then stop the loop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> "ClientPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
