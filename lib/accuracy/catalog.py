"""Which runs a report can show: the results store's, and the two that ship with the code.

A fresh clone has no runs of its own, so `artifacts/first-run/` holds a real baseline and tuned run
that the harness made against the local model server (`make first-run` makes them again); the
Accuracy page shows them until the presenter's own runs replace them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Sequence
from urllib.parse import urlparse

from lib.accuracy.records import RunInfo, list_runs
from lib.accuracy.report import default_pair
from lib.errors import UserError
from lib.store import Store

__all__ = ["Catalog", "catalog", "how_made"]


@dataclass(frozen=True)
class Catalog:
    """Runs from every source, newest first, with where each one lives."""

    runs: tuple[RunInfo, ...]
    stores: dict[str, str] = field(default_factory=dict)  # run id -> the store's address
    shipped: frozenset[str] = frozenset()  # ids of the runs that ship with the code
    problem: str | None = None  # why the results store could not be listed (the shipped runs still are)

    def store_of(self, run_id: str) -> Store:
        return Store(self.stores[run_id])

    def label(self, run_id: str) -> str:
        info = next(r for r in self.runs if r.run_id == run_id)
        return info.label + (" · shipped with the code" if run_id in self.shipped else "")

    def default_pair(self) -> tuple[str | None, str | None]:
        """The newest base and tuned runs of the results store when it has both, else of everything."""
        own = [r for r in self.runs if r.run_id not in self.shipped]
        if {"base", "tuned"} <= {r.role for r in own}:
            return default_pair(own)
        return default_pair(self.runs)


def catalog(results_root: str, shipped_root: str | Path | None = None) -> Catalog:
    """The runs of the results store plus those shipped with the code; a store problem is kept, not raised."""
    runs: list[RunInfo] = []
    stores: dict[str, str] = {}
    problem = None
    try:
        store = Store(results_root)
        store.check_readable()
        own = list_runs(store)
    except UserError as exc:
        own, problem = [], str(exc)
    else:
        runs += own
        stores |= {r.run_id: store.uri for r in own}
    shipped: list[RunInfo] = []
    if shipped_root is not None and Path(shipped_root).is_dir():
        bundled = Store(shipped_root)
        shipped = [r for r in list_runs(bundled) if r.run_id not in stores]
        stores |= {r.run_id: bundled.uri for r in shipped}
    everything = sorted(runs + shipped, key=lambda r: (r.started_unix_s, r.run_id), reverse=True)
    return Catalog(tuple(everything), stores, frozenset(r.run_id for r in shipped), problem)


def _where(url: str) -> str:
    host = urlparse(url).hostname or url
    return "the local model server" if host in ("127.0.0.1", "localhost", "::1") else host


def how_made(runs: Sequence[RunInfo], *, shipped: frozenset[str] = frozenset()) -> str:
    """When, by which command, against which server and on which photos the runs were made (folder names only).

    Runs that share all but the backend (the usual baseline-and-tuned pair) make one sentence.
    """
    groups: dict[tuple, list[RunInfo]] = {}
    for info in runs:
        key = (info.run_id in shipped, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(info.started_unix_s)),
               _where(info.url), info.photo_count, info.split, PurePath(info.data_dir).name or "the photo folder",
               info.limit, info.git_commit, info.constrained)
        if info not in groups.setdefault(key, []):
            groups[key].append(info)
    sentences = []
    for (is_shipped, started, where, count, split, folder, limit, commit, constrained), members in groups.items():
        flag = " --constrained" if constrained else ""
        commands = " and ".join(f"`python -m lib eval --backend {m.backend}{flag}`" for m in members)
        first = f", the first {limit}" if limit else ""
        code = f" (code at commit {commit})" if commit else ""
        origin = "Shipped with the code: made" if is_shipped else "Made"
        sentences.append(f"{origin} on {started} by {commands} against {where}, on {count} photos of the {split} "
                         f"split of `{folder}`{first}{code}.")
    return " ".join(sentences)
