"""Load runs in the results store (`lib.store`): `<root>/loadgen/<run_id>/records.jsonl` and `summary.json`.

The engine writes records to a local file as it goes; `save_run` copies them (and the summary) into
the store, which may be a folder or a `gs://` bucket. Run ids come from `lib.store.new_run_id`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from lib.loadgen.engine import LoadResult
from lib.store import LOADGEN, RUN_ID, Store, as_store, check_run_id

__all__ = ["save_run", "list_saved_runs", "local_records_dir"]

SUMMARY_FILE = "summary.json"
RECORDS_FILE = "records.jsonl"


def save_run(
    result: LoadResult, results_root: Store | str, run_id: str, *, extra: dict[str, Any] | None = None
) -> str:
    """Copy a finished run's records and summary into the store; returns the run's address.

    The summary is written last, so a listed run always has its records beside it.
    """
    store = as_store(results_root)
    check_run_id(run_id)
    store.put_file(result.records_path, LOADGEN, run_id, RECORDS_FILE)
    summary = {"run_id": run_id, "header": asdict(result.header), "summary": result.summary.to_dict(),
               **(extra or {})}
    store.write_json(summary, LOADGEN, run_id, SUMMARY_FILE)
    return store.url(LOADGEN, run_id)


def list_saved_runs(results_root: Store | str) -> list[dict[str, Any]]:
    """Saved load runs' summaries, newest first; unreadable ones are skipped, a store that cannot be
    read (a missing bucket) is a UserError."""
    store = as_store(results_root)
    runs = []
    for run_id in store.listdir(LOADGEN):
        if not RUN_ID.match(run_id):
            continue
        try:
            summary = store.read_json(LOADGEN, run_id, SUMMARY_FILE)
        except (FileNotFoundError, ValueError):
            continue  # still being saved, or not ours
        if isinstance(summary, dict):
            runs.append(summary)

    def started(summary: dict[str, Any]) -> tuple[float, str]:
        header = summary.get("header") or {}
        return float(header.get("start_unix_s") or 0.0), str(summary.get("run_id", ""))

    return sorted(runs, key=started, reverse=True)


def local_records_dir(cache_dir: Path) -> Path:
    """Where the engine writes records while a page's run is in progress."""
    folder = Path(cache_dir) / "loadgen"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
