"""How fast can the load generator send? Highest open-loop rate held on a no-op endpoint, versus Locust.

A rate "holds" when achieved >= 99% of target, p99 schedule lag < 10 ms and nothing failed. The
no-op server (a bare asyncio answerer, so it is never the bottleneck) runs in its own process, pinned
to the other core when there are two; the client runs on one core. Compared in the same run: our
engine on its raw asyncio HTTP/1.1 client (the default for http://), on aiohttp (used for https://),
on the project's shared httpx client; Locust (FastHttpUser, constant_throughput, its rate counted by
the server); and the raw engine sending the pet photos.

    .venv/bin/python benchmarks/loadgen_bench.py [--quick]

Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from lib.loadgen import LoadPlan, LoadProfile, chat_url, prepare_payloads, run_load, text_payload  # noqa: E402
from lib.settings import load_settings  # noqa: E402
from testkit import free_port  # noqa: E402

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task

BODY = {body!r}


class NoopUser(FastHttpUser):
    wait_time = constant_throughput(1)

    @task
    def chat(self):
        self.client.post("/v1/chat/completions", data=BODY, headers={{"Content-Type": "application/json"}})
"""


def start_server(cpu: int | None, fast: bool = True) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "testkit.noop_server",
        "--port",
        str(port),
        *(["--fast"] if fast else []),
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{root}/health", timeout=0.5).status_code == 200:
                return proc, root
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the no-op server did not start")


def engine_trial(root: str, rate: float, seconds: float, client: str, payloads: tuple) -> dict:
    plan = LoadPlan(
        url=chat_url(f"{root}/v1"),
        model="noop",
        client=client,
        payloads=payloads,
        profile=LoadProfile(mode="poisson", rate_rps=rate, duration_s=seconds, warmup_s=0.5, seed=1),
        out_path=Path(tempfile.gettempdir()) / f"loadgen-bench-{os.getpid()}.jsonl",
        timeout_s=10,
    )
    s = asyncio.run(run_load(plan)).summary
    lag = s.schedule_lag_ms.p99_ms if s.schedule_lag_ms else float("inf")
    holds = (s.achieved_fraction or 0) >= 0.99 and lag < 10 and s.requests_failed == 0
    return {
        "target_rps": rate,
        "achieved_rps": s.achieved_rate_rps,
        "achieved_fraction": s.achieved_fraction,
        "lag_p99_ms": lag,
        "latency_p99_ms": s.latency_ms.p99_ms if s.latency_ms else None,
        "failed": s.requests_failed,
        "holds": holds,
    }


def served(root: str) -> tuple[float, float]:
    """(requests answered, server clock) from the no-op server: the same yardstick for every client."""
    text = httpx.get(f"{root}/metrics", timeout=10).text
    lines = text.splitlines()
    count = sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if ln.startswith("noop_requests_total"))
    clock = next(float(ln.split()[1]) for ln in lines if ln.startswith("noop_clock_seconds"))
    return count, clock


def locust_trial(root: str, rate: float, seconds: float, body: bytes, cpu: int | None) -> dict:
    """Locust with `rate` users at one request/s each; achieved rate counted by the server after spawning.

    Locust's constant_throughput makes up for oversleeping, so a run that fell behind bursts above its
    target to catch up: it holds only within 1% either side of the target.
    """
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE.format(body=body))
        users = int(rate)
        spawn_s = 2.0
        cmd = [
            str(REPO / ".venv" / "bin" / "locust"),
            "-f",
            str(locustfile),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "--run-time",
            f"{spawn_s + seconds + 1:g}s",
            "--host",
            root,
            "--csv",
            f"{tmp}/out",
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--stop-timeout",
            "2",
        ]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(spawn_s)  # all users spawned within the first second; one more to settle
            n0, t0 = served(root)
            time.sleep(seconds)
            n1, t1 = served(root)
            proc.wait(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
        try:
            with open(f"{tmp}/out_stats.csv", newline="") as stats:
                agg = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
            failed = int(agg["Failure Count"])
            p99 = float(agg["99%"]) if agg.get("99%", "N/A") != "N/A" else None
        except (FileNotFoundError, StopIteration):
            failed, p99 = None, None
    achieved = (n1 - n0) / (t1 - t0)
    return {
        "target_rps": rate,
        "achieved_rps": round(achieved, 1),
        "achieved_fraction": round(achieved / rate, 4),
        "latency_p99_ms": p99,
        "failed": failed,
        "holds": 0.99 * rate <= achieved <= 1.01 * rate and not failed,
    }


def highest_rate(trial, rates: list[float], label: str, refine: bool = True) -> tuple[float, list[dict]]:
    """Climb `rates` until one does not hold (twice), then try halfway between the last good and bad."""
    best, results, bad = 0.0, [], None
    for rate in rates:
        result = trial(rate)
        results.append(result)
        if not result["holds"]:  # other processes share these cores: one retry before calling it a miss
            time.sleep(5)
            result = trial(rate)
            results.append(result)
        print(
            f"  {label:<16} {rate:>8.0f}/s -> {result['achieved_rps']:>8.1f}/s "
            f"lag p99 {result.get('lag_p99_ms', float('nan')):>8.2f} ms  failed {result['failed']}  "
            f"{'holds' if result['holds'] else 'misses'}",
            flush=True,
        )
        if not result["holds"]:
            bad = rate
            break
        best = rate
    if refine and bad is not None and best > 0:
        mid = round((best + bad) / 2, -1)
        result = trial(mid)
        results.append(result)
        print(
            f"  {label:<16} {mid:>8.0f}/s -> {result['achieved_rps']:>8.1f}/s "
            f"{'holds' if result['holds'] else 'misses'}",
            flush=True,
        )
        if result["holds"]:
            best = mid
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter trials (about a minute in all)")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin client and server to separate cores"
    )
    parser.add_argument(
        "--clients",
        default="raw,aiohttp,httpx,locust,images",
        help="which to measure, comma-separated (default: all five)",
    )
    parser.add_argument(
        "--server",
        choices=["fast", "aiohttp"],
        default="fast",
        help="no-op server: a bare asyncio answerer (default, never the bottleneck) or aiohttp",
    )
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 5.0
    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    client_cpu, server_cpu = (cores[0], cores[1]) if pin else (None, None)
    proc, root = start_server(server_cpu, fast=args.server == "fast")
    if pin:
        os.sched_setaffinity(0, {client_cpu})
    small = (text_payload("noop"),)
    load1 = os.getloadavg()[0]
    out: dict = {
        "trial_s": seconds,
        "pinned": pin,
        "server": args.server,
        "load_avg_1m_at_start": round(load1, 2),
        "criteria": "achieved >= 99% of target, p99 schedule lag < 10 ms, no failures",
    }
    try:
        print(
            f"no-op server at {root}; client pinned to CPU {client_cpu}, server to CPU {server_cpu}; "
            f"{seconds:g} s per trial; load average {load1:.2f}",
            flush=True,
        )
        clients = set(args.clients.split(","))
        small_steps = [1000, 2000, 2500, 3000, 3500, 4000, 5000, 6500, 8000]
        if "raw" in clients:
            out["raw_rps"], out["raw_trials"] = highest_rate(
                lambda r: engine_trial(root, r, seconds, "raw", small), small_steps, "engine/raw"
            )
        if "aiohttp" in clients:
            out["aiohttp_rps"], out["aiohttp_trials"] = highest_rate(
                lambda r: engine_trial(root, r, seconds, "aiohttp", small),
                [1000, 2000, 3000, 4000, 5000, 6500, 8000],
                "engine/aiohttp",
            )
        if "httpx" in clients:
            out["httpx_rps"], out["httpx_trials"] = highest_rate(
                lambda r: engine_trial(root, r, seconds, "httpx", small),
                [500, 1000, 2000, 3000, 4000, 5000, 6500],
                "engine/httpx",
            )
        if "locust" in clients:
            out["locust_rps"], out["locust_trials"] = highest_rate(
                lambda r: locust_trial(root, r, seconds, small[0].body, client_cpu),
                [1000, 2000, 3000, 4000, 5000, 6500, 8000],
                "locust",
            )
            if out.get("raw_rps") is not None and out["locust_rps"]:
                out["ratio_vs_locust"] = round(out["raw_rps"] / out["locust_rps"], 2)
        pets = load_settings().pets_dir or REPO.parent / "shared" / "pets"
        if "images" in clients and Path(pets).is_dir():
            t = time.perf_counter()
            photos = tuple(prepare_payloads(pets, "noop", max_side=load_settings().max_image_side))
            out["image_payloads"] = len(photos)
            out["image_body_kib_mean"] = round(sum(len(p.body) for p in photos) / len(photos) / 1024, 1)
            out["image_encode_s"] = round(time.perf_counter() - t, 2)
            out["images_rps"], out["images_trials"] = highest_rate(
                lambda r: engine_trial(root, r, seconds, "raw", photos),
                [1000, 2000, 3000, 4000, 5000, 6500, 8000],
                "engine/images",
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print()
    print(f"{'client':<34}{'highest held rate (req/s)':>28}")
    rows = [
        ("raw_rps", "loadgen engine (raw, the default)", ""),
        ("aiohttp_rps", "loadgen engine (aiohttp)", ""),
        ("httpx_rps", "loadgen engine (shared httpx)", ""),
        ("locust_rps", "locust FastHttpUser", f"   ratio raw engine/locust {out.get('ratio_vs_locust')}"),
        (
            "images_rps",
            "loadgen engine, pet photos",
            f"   ({out.get('image_payloads')} photos, {out.get('image_body_kib_mean')} KiB/body)",
        ),
    ]
    for key, label, extra in rows:
        if key in out:
            print(f"{label:<34}{out[key]:>28.0f}{extra}")
    print(
        f"load average {out['load_avg_1m_at_start']} at start, {out['load_avg_1m_at_end']} at end "
        "(other processes on these cores lower every figure)"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
