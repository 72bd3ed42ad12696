"""A no-op OpenAI-compatible endpoint for measuring the load generator itself (tests and benchmarks).

`python -m testkit.noop_server --port P` answers every chat completion with a fixed breed.
Path prefixes make bad backends on demand: `/fail/503/v1/...` answers 503, `/hang/v1/...` never
answers, `/slow/50/v1/...` waits 50 ms. `/metrics` counts requests in Prometheus text format.
`--fast` swaps aiohttp for a bare asyncio answerer (benchmarks: the server must not be the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

from aiohttp import web

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-noop",
        "object": "chat.completion",
        "created": 0,
        "model": "noop",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Abyssinian"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


def make_app() -> web.Application:
    """The aiohttp application; request counts per outcome feed `/metrics`."""
    counts = {"ok": 0, "fail": 0, "hang": 0}

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        counts["ok"] += 1
        return web.Response(body=COMPLETION, content_type="application/json")

    async def fail(request: web.Request) -> web.Response:
        await request.read()
        counts["fail"] += 1
        status = int(request.match_info["status"])
        body = json.dumps({"error": {"message": f"no-op server told to fail with {status}"}})
        return web.Response(status=status, text=body, content_type="application/json")

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        counts["ok"] += 1
        return web.Response(body=COMPLETION, content_type="application/json")

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        counts["hang"] += 1
        await asyncio.sleep(3600)
        return web.Response(status=504)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "noop", "object": "model"}]})

    async def metrics(request: web.Request) -> web.Response:
        lines = [
            "# HELP noop_requests_total Requests answered by the no-op server.",
            "# TYPE noop_requests_total counter",
        ]
        lines += [f'noop_requests_total{{outcome="{k}"}} {v}' for k, v in counts.items()]
        # the server's own clock at this snapshot, so rates do not depend on how long /metrics took to answer
        lines += ["# TYPE noop_clock_seconds gauge", f"noop_clock_seconds {time.monotonic():.6f}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/fail/{status:\\d+}/v1/chat/completions", fail)
    app.router.add_post("/slow/{ms:\\d+}/v1/chat/completions", slow)
    app.router.add_post("/hang/v1/chat/completions", hang)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", lambda r: asyncio.sleep(0, web.Response(text="ok")))
    return app


class _FastNoop(asyncio.Protocol):
    """A bare HTTP/1.1 keep-alive answerer for benchmarks, so the server is never the bottleneck."""

    counts = {"ok": 0}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(buf) < end + 4 + length:
                return
            del buf[: end + 4 + length]
            if head.startswith(b"get /metrics"):
                text = (
                    f'noop_requests_total{{outcome="ok"}} {self.counts["ok"]}\n'
                    f"noop_clock_seconds {time.monotonic():.6f}\n"
                ).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(text), text)
                )
            elif head.startswith(b"get "):
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            else:
                self.counts["ok"] += 1
                self.transport.write(FAST_ANSWER)


FAST_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(COMPLETION),
    COMPLETION,
)


async def _serve_fast(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_FastNoop, host, port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fast", action="store_true", help="bare asyncio answerer: every POST succeeds")
    args = parser.parse_args()
    if args.fast:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
            asyncio.run(_serve_fast(args.host, args.port))
        return
    web.run_app(
        make_app(),
        host=args.host,
        port=args.port,
        access_log=None,
        shutdown_timeout=0.5,
        print=lambda *a: print("ready", flush=True),
    )


if __name__ == "__main__":
    main()
