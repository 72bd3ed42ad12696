"""The raw HTTP/1.1 client against servers that answer in every framing HTTP/1.1 allows."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from lib.loadgen import RawSender, SendResult

BODY = b'{"choices": [{"message": {"content": "Abyssinian"}}]}'


async def aiohttp_server(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1/chat/completions"


async def raw_server(answer: bytes, *, close: bool) -> tuple[asyncio.AbstractServer, str, list[bytes]]:
    """A socket server that reads one request and writes `answer` verbatim (closing after it if `close`)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = int(
                    next(ln.split(b":")[1] for ln in lines if ln.lower().startswith(b"content-length"))
                )
                seen.append(head + await reader.readexactly(length))
                writer.write(answer)
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the client went away
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions", seen


async def test_chunked_answers_are_read_whole():
    async def chunked(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (BODY[:10], BODY[10:30], BODY[30:]):
            await response.write(piece)
        await response.write_eof()
        return response

    runner, url = await aiohttp_server(chunked)
    try:
        sender = RawSender(url, {}, max_connections=4, timeout_s=5)
        for _ in range(3):  # the same keep-alive connection, three times
            result = await sender.send(b'{"model": "m"}')
            assert result == SendResult(result.first_byte_s, 200, len(BODY)) and result.first_byte_s is not None
        assert len(sender._all) == 1
        await sender.aclose()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BODY), BODY),
        b"HTTP/1.0 200 OK\r\n\r\n%s" % BODY,  # no length: the body ends when the server closes
    ],
)
async def test_close_delimited_answers_and_no_reuse(answer):
    server, url, seen = await raw_server(answer, close=True)
    try:
        sender = RawSender(url, {"Authorization": "Bearer t"}, max_connections=4, timeout_s=5)
        for _ in range(2):
            result = await sender.send(b'{"model": "m"}')
            assert (result.status, result.response_bytes, result.error) == (200, len(BODY), None)
        assert len(seen) == 2 and b"authorization: bearer t" in seen[0].lower()
        assert seen[0].endswith(b'\r\n\r\n{"model": "m"}')
        await sender.aclose()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_keep_alive_connection_closed_by_the_server_is_retried_once():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    server, url, seen = await raw_server(answer, close=False)
    sender = RawSender(url, {}, max_connections=4, timeout_s=5)
    try:
        assert (await sender.send(b"{}")).status == 200
        idle = sender._idle[0]
        idle.transport.close()  # as if the server's idle timeout had fired
        await asyncio.sleep(0.05)
        again = await sender.send(b"{}")
        assert (again.status, again.response_bytes, again.error) == (200, len(BODY), None)
    finally:
        await sender.aclose()
        server.close()
        await server.wait_closed()


async def test_garbage_is_an_error_not_a_crash():
    server, url, _ = await raw_server(b"SSH-2.0-OpenSSH\r\n\r\n", close=True)
    try:
        result = await RawSender(url, {}, max_connections=1, timeout_s=2).send(b"{}")
        assert result.status is None and result.error_kind == "connect" and "HTTP" in (result.error or "")
    finally:
        server.close()
        await server.wait_closed()


def test_https_is_left_to_aiohttp():
    with pytest.raises(ValueError, match="http://"):
        RawSender("https://example.run.app/v1/chat/completions", {}, max_connections=1, timeout_s=1)


async def test_the_timeout_covers_waiting_for_a_free_connection():
    hang = b""  # the server reads the request and never answers
    server, url, _ = await raw_server(hang, close=False)
    sender = RawSender(url, {}, max_connections=1, timeout_s=0.3)
    try:
        first, second = await asyncio.gather(sender.send(b"{}"), sender.send(b"{}"))
        assert first.error_kind == "timeout" and "no answer within" in (first.error or "")
        # the second waited for the one connection and gave up on the same clock, without ever sending
        assert second.error_kind == "timeout" and "no free connection" in (second.error or "")
    finally:
        await sender.aclose()
        server.close()
        await server.wait_closed()
