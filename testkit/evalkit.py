"""Helpers for the evaluation tests: synthetic labelled photos, a scripted OpenAI-compatible server that counts
requests and can hang, and finished runs written straight into a results root."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from aiohttp import web
from PIL import Image

from lib.accuracy import EvalRecord, RecordWriter, RunInfo, write_info
from lib.store import Store
from testkit import free_port

BREEDS = ("pug", "beagle", "Bengal", "Abyssinian")


def make_photos(folder: Path, per_breed: int = 5, breeds: tuple[str, ...] = BREEDS) -> Path:
    """Small JPEGs named like the dataset (`pug_1.jpg` ...), one colour per breed."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, breed in enumerate(breeds):
        for n in range(1, per_breed + 1):
            Image.new("RGB", (48, 40), (40 * i, 200 - 30 * i, 17 * n % 255)).save(folder / f"{breed}_{n}.jpg")
    return folder


class ScriptedServer:
    """An OpenAI-compatible chat server on loopback: answers `answer`, after `delay_s`; after `hang_after`
    requests it stops answering (a backend that dies half-way). Counts every request it receives."""

    def __init__(self, answer: str = "pug", delay_s: float = 0.0, hang_after: int | None = None) -> None:
        self.answer, self.delay_s, self.hang_after = answer, delay_s, hang_after
        self.requests = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        if self.hang_after is not None and self.requests > self.hang_after:
            await asyncio.sleep(30)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response({"id": "x", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": self.answer},
                                               "finish_reason": "stop"}]})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "ScriptedServer":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()
            # Handlers still hanging (hang_after) are cancelled here rather than destroyed with the loop.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def write_run(root: Store, run_id: str, rows: list[tuple[str, str, str]], *, backend: str = "m",
              role: str | None = None, started: float | None = None, data_dir: str = "",
              errors: dict[str, str] | None = None) -> RunInfo:
    """A finished run from (photo_id, truth, answer) rows; `errors` maps photo ids to an error message."""
    errors = errors or {}
    info = RunInfo(run_id=run_id, backend=backend, model=backend, url="http://127.0.0.1:1/v1", role=role,
                   constrained=False, split="test", data_dir=data_dir, photo_count=len(rows), concurrency=4,
                   started_unix_s=started or time.time(), finished_unix_s=time.time(), wall_s=1.0)
    write_info(root, info)
    with RecordWriter(root, run_id) as writer:
        for photo_id, truth, answer in rows:
            error = errors.get(photo_id)
            writer.write(EvalRecord(photo_id, truth, "unknown" if error else answer, "" if error else answer, 12.5,
                                    1, error, "timeout" if error else None))
    return info


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
