"""How much does the evaluation harness cost? And how fast does the Accuracy page render two big runs?

1. Harness vs bare: every photo in the shared folder to the local `pets-tuned` server, once through
   `lib.evaluate.run_evaluation` (photo listing, image preparation, the one client, records written)
   and once as bare requests (bodies prepared before the clock, plain aiohttp), at the same
   concurrency, alternating in the same run against the same server. Target: harness <= 1.3x bare.
2. Page: two synthetic 10,000-record runs in a temp results root, the Accuracy page rendered through
   streamlit.testing, cold (reading and computing) and warm (cached). Target: < 2 s.

    .venv/bin/python benchmarks/eval_bench.py [--url URL] [--concurrency 8] [--rounds 2] [--skip-harness]

Prints figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from lib.accuracy import EvalOptions, EvalRecord, RecordWriter, RunInfo, run_evaluation, write_info  # noqa: E402
from lib.breeds import BREED_IDS  # noqa: E402
from lib.client import chat_request  # noqa: E402
from lib.data import list_photos  # noqa: E402
from lib.images import prepare_jpeg  # noqa: E402
from lib.registry import Backend  # noqa: E402
from lib.store import Store  # noqa: E402


async def bare(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, int]:
    """Send every prepared body with `concurrency` workers; (seconds, failures)."""
    queue = list(reversed(bodies))
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal failures
            while queue:
                body = queue.pop()
                async with session.post(f"{url}/chat/completions", data=body,
                                        headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    failures += response.status != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, failures


def harness(url: str, photos_dir: Path, concurrency: int, root: str) -> tuple[float, int, float]:
    """(seconds, errors, accuracy) of one full run through the harness."""
    backend = Backend(name="pets-tuned", base_url=url, model="pets-tuned", family="openai")
    start = time.perf_counter()
    result = run_evaluation(EvalOptions(backend, photos_dir, root, concurrency=concurrency, split="all",
                                        new_run=True))
    return time.perf_counter() - start, result.metrics.errors, result.metrics.accuracy


def synthetic_runs(root: Store, n: int, seed: int = 7) -> None:
    """Two runs of `n` photos over the 37 breeds: a 55%-right baseline and an 88%-right tuned model."""
    rng = random.Random(seed)
    truths = [(f"{BREED_IDS[i % 37]}_{i}", BREED_IDS[i % 37]) for i in range(n)]
    for run_id, role, p_right, started in (("bench-base", "base", 0.55, 1.0), ("bench-tuned", "tuned", 0.88, 2.0)):
        write_info(root, RunInfo(run_id, f"pets-{role}", f"pets-{role}", "http://127.0.0.1:1/v1", role, False, "all",
                                "/nowhere", n, 8, started_unix_s=started, finished_unix_s=started + 1, wall_s=1.0))
        with RecordWriter(root, run_id) as writer:
            for photo_id, truth in truths:
                answer = truth if rng.random() < p_right else rng.choice([*BREED_IDS, "unknown"])
                writer.write(EvalRecord(photo_id, truth, answer, answer, rng.uniform(5, 50), 1))


def page_render(n: int) -> dict[str, float]:
    """Seconds to render the Accuracy page for two n-record runs: first (cold) and then (warm) run."""
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as tmp:
        synthetic_runs(Store(tmp), n)
        os.environ.update(RESULTS_ROOT=tmp, APP_MODE="attendee")
        at = AppTest.from_file(str(REPO / "app_pages" / "accuracy.py"), default_timeout=120)
        start = time.perf_counter()
        at.run()
        cold = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(at.exception[0].message)
        warm = []
        for _ in range(3):
            start = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - start)
        return {"page_cold_s": cold, "page_warm_s": statistics.median(warm)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running local server (default: start one on a free port)")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "pets"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="bare/harness pairs, alternating")
    parser.add_argument("--records", type=int, default=10_000, help="records per synthetic run for the page")
    parser.add_argument("--skip-harness", action="store_true")
    args = parser.parse_args()
    out: dict[str, float | int | str | None] = {"concurrency": args.concurrency, "cpus": os.cpu_count()}

    if not args.skip_harness:
        proc = None
        url = args.url
        if url is None:
            from lib.local import start_local_server
            from testkit import free_port

            port = free_port()
            proc = start_local_server("127.0.0.1", port)
            url = f"http://127.0.0.1:{port}/v1"
        try:
            photos = list_photos(args.photos)
            bodies = [json.dumps(chat_request("pets-tuned", prepare_jpeg(p.path.read_bytes()))).encode()
                      for p in photos]
            asyncio.run(bare(url, bodies[:16], args.concurrency))  # warm the server up
            bare_s, harness_s = [], []
            with tempfile.TemporaryDirectory() as root:
                for i in range(args.rounds):
                    seconds, failures = asyncio.run(bare(url, bodies, args.concurrency))
                    bare_s.append(seconds)
                    h_seconds, errors, accuracy = harness(url, Path(args.photos), args.concurrency, root)
                    harness_s.append(h_seconds)
                    print(f"round {i + 1}: bare {seconds:.2f} s ({failures} failed), harness {h_seconds:.2f} s "
                          f"({errors} errors, accuracy {accuracy:.1%}), ratio {h_seconds / seconds:.3f}")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        ratio = statistics.median(h / b for h, b in zip(harness_s, bare_s, strict=True))
        out.update(photos=len(bodies), bare_s=round(statistics.median(bare_s), 3),
                   harness_s=round(statistics.median(harness_s), 3), harness_over_bare=round(ratio, 3),
                   harness_target_met=ratio <= 1.3)
        print(f"{len(bodies)} photos at concurrency {args.concurrency}: bare {out['bare_s']} s, harness "
              f"{out['harness_s']} s -> {ratio:.3f}x (target <= 1.3x)")

    page = page_render(args.records)
    out.update(records_per_run=args.records, page_cold_s=round(page["page_cold_s"], 3),
               page_warm_s=round(page["page_warm_s"], 3), page_target_met=page["page_cold_s"] < 2.0)
    print(f"Accuracy page, two {args.records}-record runs: {page['page_cold_s']:.2f} s cold, "
          f"{page['page_warm_s']:.2f} s warm (target < 2 s)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
