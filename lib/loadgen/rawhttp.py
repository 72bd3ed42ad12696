"""A lean HTTP/1.1 keep-alive client on asyncio protocols: the load generator's fastest send path.

Only what a load generator needs: POST a ready body, read status and the whole response
(Content-Length, chunked, or until close), time the first byte. Measured on this machine it costs a
fraction of aiohttp's CPU per request (see benchmarks/loadgen_bench.py). Plain `http://` only; TLS
targets (Cloud Run) go through aiohttp.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from urllib.parse import urlsplit

from lib.loadgen.send import SendResult, status_error

__all__ = ["RawSender"]


class _Connection(asyncio.Protocol):
    """One keep-alive connection answering one request at a time."""

    __slots__ = (
        "transport",
        "buf",
        "waiter",
        "first_byte",
        "closed",
        "_head_end",
        "_length",
        "_chunked",
        "_status",
        "_keep_alive",
        "_until_close",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.first_byte: float | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.buf.clear()
        self.first_byte = None
        self._head_end = -1
        self._length: int | None = None
        self._chunked = False
        self._status = 0
        self._keep_alive = True
        self._until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # create_connection's transports are full ones
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self._until_close and self._head_end >= 0:
                self._finish(len(self.buf) - self._head_end)
            else:
                waiter.set_exception(ConnectionError("the server closed the connection before answering"))

    def data_received(self, data: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = perf_counter()
        buf = self.buf
        buf += data
        if self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head_end = end + 4
            head = bytes(buf[:end]).lower()
            try:
                self._status = int(head[9:12])
            except ValueError:
                self._fail("the answer is not HTTP/1.x")
                return
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    if not value.strip().isdigit():
                        self._fail("the answer's Content-Length is not a number")
                        return
                    self._length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value:
                    self._chunked = True
                elif name == b"connection" and b"close" in value:
                    self._keep_alive = False
            if lines[0].startswith(b"http/1.0") and b"connection: keep-alive" not in head:
                self._keep_alive = False
            if self._length is None and not self._chunked:
                if self._status in (204, 304) or 100 <= self._status < 200:
                    self._length = 0
                else:
                    self._until_close, self._keep_alive = True, False
        if self._length is not None:
            if len(buf) - self._head_end >= self._length:
                self._finish(self._length)
        elif self._chunked:
            try:
                size = _chunked_size(buf, self._head_end)
            except ValueError:
                self._fail("the answer's chunked encoding is broken")
                return
            if size is not None:
                self._finish(size)

    def _finish(self, body_bytes: int) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body_bytes, self._keep_alive))

    def _fail(self, message: str) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(message))
        if self.transport is not None:
            self.transport.close()


def _chunked_size(buf: bytearray, pos: int) -> int | None:
    """Body size of a complete chunked body starting at `pos`, or None while more is to come."""
    total = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            return total if buf.find(b"\r\n\r\n", eol) >= 0 or buf.endswith(b"0\r\n\r\n") else None
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return None
        total += size


class RawSender:
    """POST ready bodies over pooled keep-alive connections; every outcome is a `SendResult`, never raised."""

    def __init__(self, url: str, headers: dict[str, str], *, max_connections: int, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError("RawSender speaks plain http:// only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-type")
        self._prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/json\r\n{extra}"
        )
        self._heads: dict[int, bytes] = {}
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max_connections)

    def _head(self, length: int) -> bytes:
        head = self._heads.get(length)
        if head is None:
            head = self._heads[length] = f"{self._prefix}Content-Length: {length}\r\n\r\n".encode()
        return head

    async def aclose(self) -> None:
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
        await asyncio.sleep(0)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.host, self.port)
        self._all.add(conn)
        return conn

    async def send(self, body: bytes) -> SendResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s  # the timeout covers waiting for a free connection too
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout_s)
            except asyncio.TimeoutError:
                return SendResult(None, None, 0, f"no free connection within {self.timeout_s:g} s", "timeout")
        else:
            await self._slots.acquire()
        try:
            return await self._send(loop, body, deadline)
        finally:
            self._slots.release()

    async def _send(self, loop: asyncio.AbstractEventLoop, body: bytes, deadline: float) -> SendResult:
        for attempt in (1, 2):  # a reused connection the server just closed: retry once on a new one
            reused = False
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn, reused = candidate, True
                    break
                self._all.discard(candidate)
            try:
                if conn is None:
                    conn = await asyncio.wait_for(self._connect(), max(deadline - loop.time(), 0.001))
            except (OSError, asyncio.TimeoutError) as exc:
                return SendResult(
                    None, None, 0, f"cannot connect to {self.host}:{self.port}: {exc or 'timed out'}", "connect"
                )
            conn._reset()
            waiter = conn.waiter = loop.create_future()
            timer = loop.call_at(deadline, _expire, waiter)
            assert conn.transport is not None
            conn.transport.writelines((self._head(len(body)), body))
            try:
                status, size, keep_alive = await waiter
            except asyncio.TimeoutError:
                conn.transport.close()
                self._all.discard(conn)
                return SendResult(conn.first_byte, None, 0, f"no answer within {self.timeout_s:g} s", "timeout")
            except ConnectionError as exc:
                self._all.discard(conn)
                if reused and attempt == 1 and conn.first_byte is None:
                    continue
                return SendResult(conn.first_byte, None, 0, str(exc), "connect")
            except asyncio.CancelledError:
                conn.transport.close()
                self._all.discard(conn)
                raise
            finally:
                timer.cancel()
                conn.waiter = None
            if keep_alive and not conn.closed:
                self._idle.append(conn)
            else:
                conn.transport.close()
                self._all.discard(conn)
            if status != 200:
                return SendResult(conn.first_byte, status, size, *status_error(status))
            return SendResult(conn.first_byte, status, size)

        return SendResult(None, None, 0, "the server closed the connection before answering", "connect")


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())

