"""Load runs under the results root: `<root>/loadgen/<run_id>/records.jsonl` and `summary.json`.

The engine writes records to a local file as it goes; `save_run` copies them (and the summary) to
the results root, which may be a folder or a `gs://` bucket (through `lib.results.ResultsRoot`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lib.errors import UserError
from lib.loadgen.engine import LoadResult
from lib.accuracy import ResultsRoot

__all__ = ["new_load_run_id", "save_run", "list_saved_runs"]


def new_load_run_id(backend: str, now_s: float | None = None) -> str:
    """`20261128-031500-pets-tuned`: sortable by time, safe as a folder name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_s if now_s is not None else time.time()))
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]+', '-', backend)[:60]}"


def save_run(
    result: LoadResult, results_root: str, run_id: str, *, extra: dict[str, Any] | None = None
) -> str:
    """Copy a finished run's records and summary under the results root; returns the run's address."""
    root = ResultsRoot(results_root)
    try:
        root.fs.makedirs(root.path("loadgen", run_id), exist_ok=True)
        root.fs.put_file(str(result.records_path), root.path("loadgen", run_id, "records.jsonl"))
        summary = {
            "run_id": run_id,
            "header": asdict(result.header),
            "summary": result.summary.to_dict(),
            **(extra or {}),
        }
        with root.fs.open(root.path("loadgen", run_id, "summary.json"), "w") as f:
            f.write(json.dumps(summary, indent=1))
    except OSError as exc:
        raise UserError(f"cannot save the load run under {root.uri}: {exc}") from None
    return root.url("loadgen", run_id)


def list_saved_runs(results_root: str) -> list[dict[str, Any]]:
    """Saved load runs' summaries, newest first (unreadable ones skipped)."""
    root = ResultsRoot(results_root)
    try:
        paths = root.fs.glob(root.path("loadgen", "*", "summary.json"))
    except (OSError, FileNotFoundError):
        return []
    runs = []
    for path in sorted(paths, reverse=True):
        try:
            with root.fs.open(path, "r") as f:
                runs.append(json.load(f))
        except (OSError, ValueError):
            continue
    return runs


def local_records_dir(cache_dir: Path) -> Path:
    """Where the engine writes records while a page's run is in progress."""
    folder = Path(cache_dir) / "loadgen"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
