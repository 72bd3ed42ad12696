"""Discovery at fleet scale: 150 Cloud Run services serving 500 LoRA adapters, on loopback.

The fake Admin API (gRPC) and the model services + token endpoint (HTTP) run in a child process,
so the figure is what the discovering process itself spends. Real `run_v2` client, real google-auth
ID-token exchange (one per service URL). Prints one JSON object on the last line.

    .venv/bin/python benchmarks/discovery_bench.py [--services 150] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(conn, services: int) -> None:  # runs in the child process
    from testkit.cloudrun_fakes import FakeCloudRun, ModelServers, add_fleet

    fake_run, models = FakeCloudRun().start(), ModelServers().start()
    add_fleet(fake_run, models, services, adapters=3)
    for i in range(min(50, services)):  # 150 x 3 + 50 = 500 adapters
        models.adapters[f"svc-{i:03d}"].append(f"pets-extra-{i:03d}")
    conn.send((fake_run.endpoint, models.token_uri))
    conn.recv()  # wait until the parent is done
    models.stop()
    fake_run.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, args.services), daemon=True)
    proc.start()
    endpoint, token_uri = parent.recv()
    try:
        from testkit.cloudrun_fakes import PROJECT, REGIONS, write_service_account

        key = write_service_account(Path(tempfile.mkdtemp()) / "sa.json", token_uri)
        os.environ.update({"GOOGLE_APPLICATION_CREDENTIALS": str(key), "NO_GCE_CHECK": "True"})
        from lib.cloudrun import discover, list_services, make_clients, to_backends
        from lib.settings import load_settings

        clients = make_clients(load_settings({"CLOUD_RUN_API_ENDPOINT": endpoint}))
        list_s, discover_s = [], []
        found: list = []
        for _ in range(args.runs):
            start = time.perf_counter()
            list_services(PROJECT, REGIONS, clients=clients)
            list_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            found = discover(PROJECT, REGIONS, clients=clients)
            discover_s.append(time.perf_counter() - start)
            print(f"list {list_s[-1]:.3f} s, discover + probe {discover_s[-1]:.3f} s", flush=True)
        backends = to_backends(found)
        print(json.dumps({
            "services": len(found), "healthy": sum(s.health == "ok" for s in found),
            "backends": len(backends), "adapters": sum(b.role == "tuned" for b in backends),
            "list_s_median": round(statistics.median(list_s), 3),
            "discover_s_median": round(statistics.median(discover_s), 3),
            "discover_s_max": round(max(discover_s), 3), "runs": args.runs,
        }))
    finally:
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
