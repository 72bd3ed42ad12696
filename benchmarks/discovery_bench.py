"""Discovery at fleet scale: 150 Cloud Run services serving 500 LoRA adapters, on loopback; and the
Classify page's picker over the 652 backends that makes (with the two local ones).

The fake Admin API (gRPC) and the model services + token endpoint (HTTP) run in a child process,
so the figure is what the discovering process itself spends. Real `run_v2` client, real google-auth
ID-token exchange (one per service URL). The page is run through `streamlit.testing` from the
entrypoint: its first run (discovery included), reruns (the picker drawn over 652 backends), and a
rerun narrowed to one server. Prints one JSON object on the last line.

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


def page_figures(endpoint: str, project: str, regions: list[str], runs: int) -> dict[str, float | int]:
    """Seconds for the Classify page (from streamlit_app.py) over the whole registry: first run, reruns, narrowed."""
    from streamlit.testing.v1 import AppTest

    os.environ.update({"CLOUD_RUN_API_ENDPOINT": endpoint, "GOOGLE_CLOUD_PROJECT": project,
                       "CLOUD_RUN_REGIONS": ",".join(regions), "PETS_CACHE_DIR": tempfile.mkdtemp(),
                       "LOCAL_MODELS_PORT": "9"})
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    start = time.perf_counter()
    at.run()
    first_s = time.perf_counter() - start
    options = len(at.multiselect(key="classify-backends").options)
    rerun_s = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        rerun_s.append(time.perf_counter() - start)
    start = time.perf_counter()
    at.selectbox(key="classify-backends-server").set_value("svc-042").run()
    narrowed_s = time.perf_counter() - start
    print(f"page: first run {first_s:.3f} s, rerun {statistics.median(rerun_s):.3f} s, "
          f"narrowed to one server {narrowed_s:.3f} s ({options} backends in the picker)", flush=True)
    return {"page_backends": options, "page_first_run_s": round(first_s, 3),
            "page_rerun_s_median": round(statistics.median(rerun_s), 3), "page_narrowed_s": round(narrowed_s, 3)}


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
        page = page_figures(endpoint, PROJECT, REGIONS, args.runs)
        print(json.dumps({**page,
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
