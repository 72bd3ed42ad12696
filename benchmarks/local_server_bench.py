"""Local model server: latency against the same work in-process, throughput, start-up time and memory.

    .venv/bin/python benchmarks/local_server_bench.py [--photos N] [--concurrency 8]

Every request carries the original photo bytes, so server and in-process do the same decode and model
work; the difference is the HTTP, JSON and base64 overhead. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.client import BackendClient, RetryPolicy, chat_request, make_http_client
from lib.data import list_photos
from lib.images import open_image
from lib.local import DRAFT, Backbone, TunedHead, start_local_server
from lib.registry import Backend
from lib.settings import load_settings
from testkit import free_port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def paired_c1(url: str, photos: list[bytes], rounds: int) -> tuple[list[float], list[float]]:
    """Each photo in-process, then the same photo through the server: both see the same machine load."""
    settings = load_settings()
    backbone = Backbone(settings.cache_dir)
    head = TunedHead.load(settings.artifacts_dir)
    backend = Backend(name="pets-tuned", base_url=url, model="pets-tuned", family="local")
    bodies = [chat_request("pets-tuned", data) for data in photos]
    local, served = [], []
    async with make_http_client(max_connections=1) as http:
        client = BackendClient(backend, http=http, retry=RetryPolicy(max_attempts=1))
        await client.send(bodies[0])
        head.answer(backbone(open_image(photos[0], draft=DRAFT)))
        for _ in range(rounds):
            for data, body in zip(photos, bodies, strict=True):
                start = time.perf_counter()
                head.answer(backbone(open_image(data, draft=DRAFT)))
                local.append((time.perf_counter() - start) * 1000)
                p = await client.send(body)
                if not p.ok:
                    raise RuntimeError(p.error)
                served.append(p.latency_ms)
    return local, served


async def over_http(url: str, photos: list[bytes], concurrency: int, rounds: int) -> tuple[list[float], float]:
    backend = Backend(name="pets-tuned", base_url=url, model="pets-tuned", family="local")
    # Bodies are built before the clock starts: the original bytes, not a re-encoded copy.
    bodies = [chat_request("pets-tuned", data) for data in photos] * rounds
    gate = asyncio.Semaphore(concurrency)
    async with make_http_client(max_connections=concurrency) as http:
        client = BackendClient(backend, http=http, retry=RetryPolicy(max_attempts=1))
        await client.send(bodies[0])  # warm the connection pool

        async def one(body: dict) -> float:
            async with gate:
                p = await client.send(body)
                if not p.ok:
                    raise RuntimeError(p.error)
                return p.latency_ms

        start = time.perf_counter()
        latencies = await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - start
    return list(latencies), len(bodies) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=259)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server-args", default="", help='extra serve-local arguments, e.g. "--workers 2 --threads 1"')
    args = parser.parse_args()
    pets = load_settings().pets_dir or Path(__file__).resolve().parents[2] / "shared" / "pets"
    photos = [p.path.read_bytes() for p in list_photos(pets, limit=args.photos)]

    port = free_port()
    start = time.perf_counter()
    proc = start_local_server("127.0.0.1", port, *args.server_args.split())
    ready_s = time.perf_counter() - start
    url = f"http://127.0.0.1:{port}/v1"
    try:
        inproc, seq = asyncio.run(paired_c1(url, photos, args.rounds))
        _, seq_rps = asyncio.run(over_http(url, photos, 1, 1))
        conc, conc_rps = asyncio.run(over_http(url, photos, args.concurrency, args.rounds))
        rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)

    p50_in, p50_seq = statistics.median(inproc), statistics.median(seq)
    figures = {
        "photos": len(photos),
        "cores": os.cpu_count(),
        "in_process_p50_ms": round(p50_in, 2),
        "server_c1_p50_ms": round(p50_seq, 2),
        "server_over_in_process_p50": round(p50_seq / p50_in, 3),
        "in_process_rps": round(1000 / statistics.mean(inproc), 1),
        "server_c1_rps": round(seq_rps, 1),
        f"server_c{args.concurrency}_rps": round(conc_rps, 1),
        f"server_c{args.concurrency}_p50_ms": round(statistics.median(conc), 2),
        "ready_s": round(ready_s, 2),
        "server_rss_mb": round(rss, 1),
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
