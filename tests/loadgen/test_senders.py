"""The three senders (raw, aiohttp, httpx) behind one seam: the same answer is the same `SendResult`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lib.loadgen import SendResult, make_sender
from testkit import free_port
from testkit.noop_server import COMPLETION

CLIENTS = ["raw", "aiohttp", "httpx"]


@pytest.fixture
async def noop() -> AsyncIterator[str]:
    """A loopback server: `/v1/chat/completions` answers, `/fail/N/...` answers status N, `/hang/...` never."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=COMPLETION, content_type="application/json")

    async def fail(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": {"message": "told to fail"}}, status=int(request.match_info["status"]))

    release = asyncio.Event()  # set before shutdown, so the server does not wait for a hanging answer

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.Response(status=504)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    app.router.add_post("/fail/{status:\\d+}/v1/chat/completions", fail)
    app.router.add_post("/hang/v1/chat/completions", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        release.set()
        await runner.cleanup()


async def send_once(client: str, url: str, *, timeout_s: float = 5.0) -> SendResult:
    sender = make_sender(client, url, {}, max_connections=4, timeout_s=timeout_s)  # type: ignore[arg-type]
    try:
        return await sender.send(b'{"model": "noop"}')
    finally:
        await sender.aclose()


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_answer_is_a_result_with_its_status_size_and_first_byte(client: str, noop: str) -> None:
    result = await send_once(client, f"{noop}/v1/chat/completions")
    assert isinstance(result, SendResult) and result.ok
    assert (result.status, result.response_bytes, result.error, result.error_kind) == (200, len(COMPLETION), None, None)
    assert result.first_byte_s is not None


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    "status, kind",
    [(429, "rate_limited"), (503, "cold_start"), (500, "http")],
)
async def test_an_error_status_is_a_result_with_its_kind(client: str, noop: str, status: int, kind: str) -> None:
    result = await send_once(client, f"{noop}/fail/{status}/v1/chat/completions")
    assert not result.ok and (result.status, result.error_kind) == (status, kind)
    assert str(status) in (result.error or "") and result.response_bytes > 0


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_refused_connection_is_a_result_not_an_exception(client: str) -> None:
    result = await send_once(client, f"http://127.0.0.1:{free_port()}/v1/chat/completions")
    assert (result.status, result.response_bytes, result.error_kind) == (None, 0, "connect")
    assert result.first_byte_s is None and result.error


@pytest.mark.parametrize("client", CLIENTS)
async def test_no_answer_within_the_timeout_is_a_timeout_result(client: str, noop: str) -> None:
    result = await send_once(client, f"{noop}/hang/v1/chat/completions", timeout_s=0.3)
    assert (result.status, result.error_kind) == (None, "timeout") and "no answer within 0.3 s" in (result.error or "")


def test_a_result_is_frozen() -> None:
    result = SendResult(1.0, 200, 10)
    with pytest.raises(AttributeError):
        result.status = 500  # type: ignore[misc]
