"""The engine against a real no-op server: every request recorded, failures as records, stop keeps records."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp import web

from lib.client import BackendClient, RetryPolicy, chat_request
from lib.errors import UserError
from lib.images import prepare_jpeg
from lib.loadgen import (
    LoadPlan,
    LoadProfile,
    LoadRun,
    chat_url,
    load_job,
    prepare_payloads,
    read_run,
    run_load,
    text_payload,
)
from lib.registry import Backend

pytestmark = pytest.mark.slow  # starts a server process


def plan(root: str, tmp_path: Path, prefix: str = "", **profile) -> LoadPlan:
    kwargs = {"mode": "constant", "rate_rps": 100, "duration_s": 0.5} | profile
    timeout_s = kwargs.pop("timeout_s", 5.0)
    return LoadPlan(
        url=chat_url(f"{root}{prefix}/v1"),
        model="noop",
        profile=LoadProfile(**kwargs),
        payloads=(text_payload("noop"),),
        out_path=tmp_path / "run.jsonl",
        timeout_s=timeout_s,
    )


@pytest.mark.parametrize("client", ["raw", "aiohttp", "httpx"])
async def test_open_loop_sends_every_scheduled_request(noop, tmp_path, client):
    # How close to its schedule it sends is a speed figure: benchmarks/loadgen_bench.py prints it.
    p = plan(noop, tmp_path, rate_rps=200, duration_s=1.0)
    result = await run_load(LoadPlan(**{**p.__dict__, "client": client}))
    s = result.summary
    assert s.requests_sent == s.requests_ok == 200 and s.requests_failed == 0
    assert s.schedule_lag_ms is not None
    run = read_run(result.records_path)
    assert len(run.records) == 200 and run.header.planned_requests == 200
    assert sorted(r.index for r in run.records) == list(range(200))
    # never early: each request goes out at or after its scheduled moment, and its times are in order
    assert all(r.scheduled_s <= r.sent_s <= r.first_byte_s <= r.done_s and r.response_bytes > 0 for r in run.records)


async def test_closed_loop_keeps_concurrency_workers_busy(noop, tmp_path):
    result = await run_load(
        plan(
            noop,
            tmp_path,
            prefix="/slow/20",
            mode="concurrency",
            rate_rps=None,
            concurrency=4,
            duration_s=0.5,
        )
    )
    s = result.summary
    assert s.target_rate_rps is None and s.schedule_lag_ms is None
    assert 20 <= s.requests_ok <= 110  # 4 workers x ~20 ms each over 0.5 s
    run = read_run(result.records_path)
    # never more than 4 in flight at once
    events = sorted([(r.sent_s, 1) for r in run.records] + [(r.done_s, -1) for r in run.records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= 4


@pytest.mark.parametrize(
    "prefix, kind, status",
    [
        ("/fail/500", "http", 500),
        ("/fail/429", "rate_limited", 429),
        ("/fail/503", "cold_start", 503),
        ("/hang", "timeout", None),
    ],
)
@pytest.mark.parametrize("client", ["raw", "aiohttp"])
async def test_a_failing_backend_becomes_counted_records(noop, tmp_path, prefix, kind, status, client):
    p = plan(noop, tmp_path, prefix=prefix, rate_rps=20, duration_s=0.5, timeout_s=0.5)
    result = await run_load(LoadPlan(**{**p.__dict__, "client": client}))
    s = result.summary
    assert s.requests_sent == 10 and s.requests_ok == 0 and s.errors_by_kind == {kind: 10}
    assert s.latency_ms is None and "10 failed" in s.latency_basis
    assert {r.status for r in read_run(result.records_path).records} == {status}


@pytest.mark.parametrize("client", ["raw", "aiohttp"])
async def test_nothing_listening_is_a_connect_error(tmp_path, client):
    p = plan("http://127.0.0.1:9", tmp_path, rate_rps=20, duration_s=0.25)
    result = await run_load(LoadPlan(**{**p.__dict__, "client": client}))
    assert result.summary.errors_by_kind == {"connect": 5}


def test_stop_half_way_keeps_and_summarises_the_records(noop, tmp_path):
    run = LoadRun(plan(noop, tmp_path, prefix="/slow/400", rate_rps=20, duration_s=30))
    job = load_job(run).start()
    while job.running and len(run.records) < 5:  # answers arrive while it runs
        time.sleep(0.02)
    job.stop()  # the job's stop hook stops the run: nothing more is sent, in-flight requests are recorded
    final = job.wait(10)
    assert final.state == "stopped" and final.error is None
    s = final.result.summary
    assert s.interrupted and s.requests_interrupted >= 1 and s.requests_ok >= 5
    assert s.duration_s < run.plan.profile.duration_s and s.requests_sent < run.schedule_s.size
    assert len(read_run(final.result.records_path).records) == s.requests_sent == len(run.records)


async def test_bodies_are_byte_identical_to_the_one_client(photos, tmp_path):
    received: list[bytes] = []

    async def capture(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"choices": [{"message": {"content": "Abyssinian"}}]})

    app = web.Application(client_max_size=2**24)
    app.router.add_post("/v1/chat/completions", capture)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        base = f"http://127.0.0.1:{port}/v1"
        payloads = prepare_payloads(photos, "pets-tuned", max_side=896)
        backend = Backend(name="t", base_url=base, model="pets-tuned")
        async with BackendClient(backend, retry=RetryPolicy(max_attempts=1)) as client:
            jpeg = prepare_jpeg((photos / payloads[0].name).read_bytes(), max_side=896)
            prediction = await client.send(chat_request("pets-tuned", jpeg))
        assert prediction.ok
        await run_load(
            LoadPlan(
                url=chat_url(base),
                model="pets-tuned",
                payloads=tuple(payloads[:1]),
                profile=LoadProfile(mode="constant", rate_rps=4, duration_s=0.25),
                out_path=tmp_path / "r.jsonl",
            )
        )
        assert len(received) == 2 and received[0] == received[1] == payloads[0].body
        assert json.loads(received[1])["model"] == "pets-tuned"
    finally:
        await runner.cleanup()


def test_bad_image_folders_are_refused(tmp_path):
    with pytest.raises(UserError, match="no such folder; run `make data`"):
        prepare_payloads(tmp_path / "nope", "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .jpg/.jpeg/.png/.webp photos"):
        prepare_payloads(tmp_path / "empty", "m")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="no usable photo"):
        prepare_payloads(tmp_path / "bad", "m")


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://x/v1"])
def test_bad_urls_are_refused(url):
    with pytest.raises(UserError, match="http://"):
        chat_url(url)


async def test_stop_before_the_first_send_still_writes_a_header(noop, tmp_path):
    from lib.loadgen import LoadRun

    run = LoadRun(plan(noop, tmp_path, rate_rps=1, duration_s=60))
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    run.stop()
    result = await asyncio.wait_for(task, 5)
    assert result.summary.interrupted and read_run(result.records_path).header.mode == "constant"


async def test_an_unwritable_records_file_is_a_clear_message(noop, tmp_path):
    (tmp_path / "file").write_text("")
    p = plan(noop, tmp_path)
    with pytest.raises(UserError, match="cannot write the records file"):
        await run_load(LoadPlan(**{**p.__dict__, "out_path": tmp_path / "file" / "run.jsonl"}))


async def test_the_benchmarks_fast_no_op_server_answers_every_request(fast_noop, tmp_path):
    result = await run_load(plan(fast_noop, tmp_path, rate_rps=400, duration_s=0.5))
    assert result.summary.requests_ok == 200 and result.summary.requests_failed == 0
