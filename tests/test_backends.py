"""The one backend client: real answers from the local server; retries, deadlines and errors against a
scripted HTTP server on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web

from lib.client import BackendClient, RetryPolicy, breed_response_format, check_health, classify_many
from lib.registry import Backend
from testkit import free_port

FAST = RetryPolicy(deadline_s=5, backoff_initial_s=0.05, backoff_max_s=0.2)


def completion(text: str) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


class Scripted:
    """An HTTP server that answers /v1/chat/completions from a script of (status, body, delay_s)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, object, float]] = []
        self.default: tuple[int, object, float] = (200, completion("Pug"), 0.0)
        self.seen: list[dict] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        runner = self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _chat(self, request: web.Request) -> web.Response:
        self.seen.append({"headers": dict(request.headers), "body": await request.json()})
        status, body, delay = self.script.pop(0) if self.script else self.default
        await asyncio.sleep(delay)
        headers = {"Retry-After": "0.1"} if status == 429 else {}
        if isinstance(body, (dict, list)):
            return web.json_response(body, status=status, headers=headers)
        return web.Response(text=str(body), status=status, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def scripted() -> Scripted:
    server = Scripted()
    yield server
    server.close()


@pytest.fixture()
def server(scripted: Scripted) -> Scripted:
    scripted.script.clear()
    scripted.seen.clear()
    scripted.default = (200, completion("Pug"), 0.0)
    return scripted


def backend(url: str, **kw) -> Backend:
    return Backend(name=kw.pop("name", "b"), base_url=url, model=kw.pop("model", "m"), family="openai", **kw)


def jpeg(pets: Path) -> bytes:
    return (pets / "pug_112.jpg").read_bytes()


async def test_sends_an_openai_chat_request_with_a_jpeg_data_uri(server: Scripted, pets: Path) -> None:
    async with BackendClient(backend(server.url), retry=FAST) as client:
        p = await client.classify(jpeg(pets), constrained=True)
    assert p.ok and p.breed == "pug" and p.attempts == 1
    body = server.seen[0]["body"]
    image, question = body["messages"][0]["content"]
    assert image["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "breed" in question["text"]
    assert body["response_format"] == breed_response_format()
    assert body["response_format"]["json_schema"]["schema"]["properties"]["breed"]["enum"][0] == "Abyssinian"


RETRIED = [
    ("503 twice (cold start)", [(503, {"error": {"message": "starting"}}, 0)] * 2, 3),
    ("429 with Retry-After", [(429, {"error": {"message": "slow down"}}, 0)], 2),
    ("502 then 504", [(502, "bad gateway", 0), (504, "timeout", 0)], 3),
]


@pytest.mark.parametrize(("case", "script", "attempts"), RETRIED, ids=[c[0] for c in RETRIED])
async def test_cold_start_and_rate_limits_are_retried(server: Scripted, pets: Path, case, script, attempts) -> None:
    server.script.extend(script)
    async with BackendClient(backend(server.url), retry=FAST) as client:
        p = await client.classify(jpeg(pets))
    assert p.ok and p.breed == "pug" and p.attempts == attempts


FAILED = [
    ("400 is not retried", [(400, {"error": {"message": "bad image"}}, 0)], "http", 1, "bad image"),
    ("404 unknown model", [(404, {"error": {"message": "no such model"}}, 0)], "http", 1, "no such model"),
    ("not a chat completion", [(200, {"hello": "world"}, 0)], "bad_response", 1, "not a chat completion"),
    ("html error page", [(500, "<html>oops</html>", 0)], "http", 1, "oops"),
]


@pytest.mark.parametrize(("case", "script", "kind", "attempts", "needle"), FAILED, ids=[c[0] for c in FAILED])
async def test_failures_become_records(server: Scripted, pets: Path, case, script, kind, attempts, needle) -> None:
    server.script.extend(script)
    async with BackendClient(backend(server.url), retry=FAST) as client:
        p = await client.classify(jpeg(pets))
    assert not p.ok and p.error_kind == kind and p.attempts == attempts and needle in p.error
    assert p.breed == "unknown"


async def test_a_service_that_stays_cold_fails_within_the_deadline(server: Scripted, pets: Path) -> None:
    server.default = (503, {"error": {"message": "no instance"}}, 0.0)
    start = time.perf_counter()
    async with BackendClient(backend(server.url), retry=RetryPolicy(deadline_s=1.0, backoff_initial_s=0.1,
                                                                    backoff_max_s=0.3)) as client:
        p = await client.classify(jpeg(pets))
    assert p.error_kind == "cold_start" and p.status == 503 and p.attempts >= 3
    assert time.perf_counter() - start < 2.0


async def test_a_hanging_backend_times_out(server: Scripted, pets: Path) -> None:
    server.default = (200, completion("Pug"), 3.0)
    async with BackendClient(backend(server.url), retry=RetryPolicy(max_attempts=1), timeout_s=0.5) as client:
        p = await client.classify(jpeg(pets))
    assert (p.error_kind, p.error, p.attempts) == ("timeout", "no answer within 0.5 s", 1)


async def test_a_server_that_is_down_fails_fast_as_connect(pets: Path) -> None:
    start = time.perf_counter()
    async with BackendClient(backend(f"http://127.0.0.1:{free_port()}/v1"), retry=FAST) as client:
        p = await client.classify(jpeg(pets))
    assert p.error_kind == "connect" and p.attempts == FAST.connect_attempts
    assert time.perf_counter() - start < 3


async def test_a_bad_image_is_refused_before_anything_is_sent(server: Scripted) -> None:
    async with BackendClient(backend(server.url), retry=FAST) as client:
        p = await client.classify(b"not a photo")
    assert p.error_kind == "image" and p.attempts == 0 and not server.seen


async def test_bearer_token_from_the_environment(server: Scripted, pets: Path, monkeypatch) -> None:
    monkeypatch.setenv("PETS_TOKEN", "s3cret")
    async with BackendClient(backend(server.url, auth="bearer-env", token_env="PETS_TOKEN"), retry=FAST) as c:
        assert (await c.classify(jpeg(pets))).ok
    assert server.seen[-1]["headers"]["Authorization"] == "Bearer s3cret"
    monkeypatch.delenv("PETS_TOKEN")
    async with BackendClient(backend(server.url, auth="bearer-env", token_env="PETS_TOKEN"), retry=FAST) as c:
        p = await c.classify(jpeg(pets))
    assert p.error_kind == "auth" and "PETS_TOKEN" in p.error


async def test_google_id_token_audience_is_the_service_url(server: Scripted, pets: Path) -> None:
    audiences = []

    async def token(audience: str) -> str:
        audiences.append(audience)
        return "id-token-for-" + audience

    b = backend(server.url, auth="google-id-token")
    async with BackendClient(b, retry=FAST, token_provider=token) as client:
        assert (await client.classify(jpeg(pets))).ok
    assert audiences == [f"http://127.0.0.1:{server.port}"]
    assert server.seen[-1]["headers"]["Authorization"] == f"Bearer id-token-for-{audiences[0]}"


@pytest.mark.slow
async def test_real_local_server_side_by_side(local_server: str, pets: Path) -> None:
    chosen = [backend(local_server, name=n, model=n) for n in ("pets-base", "pets-tuned", "nope")]
    base, tuned, nope = await classify_many(chosen, (pets / "havanese_120.jpg").read_bytes())
    assert tuned.ok and tuned.breed == "havanese" and tuned.raw == "Havanese"
    assert base.ok and base.breed != "havanese"  # ImageNet has no Havanese: the general model misses it
    assert nope.status == 404 and nope.error_kind == "http"
    assert 0 < tuned.ttfb_ms <= tuned.latency_ms


@pytest.mark.slow
async def test_health_of_up_down_and_missing_models(local_server: str, server: Scripted) -> None:
    up = backend(local_server, name="up", model="pets-tuned")
    missing = backend(local_server, name="missing", model="gemma")
    down = backend(f"http://127.0.0.1:{free_port()}/v1", name="down")
    h = {x.backend: x for x in await check_health([up, missing, down], timeout_s=2)}
    assert h["up"].ok and h["up"].error is None
    assert not h["missing"].ok and "does not list model 'gemma'" in h["missing"].error
    assert not h["down"].ok and "connection refused" in h["down"].error
