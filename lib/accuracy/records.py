"""The evaluation format, in the one results store (`lib.store`): a local folder or `gs://bucket/prefix`.

Layout: `<root>/evals/<run_id>/run.json` (what was asked) and `records.jsonl` (one answer per line,
append-only). A bucket and a folder take the same code path; only appending differs, because objects
in a bucket cannot be appended to (see `RecordWriter`).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, BinaryIO

from lib.errors import UserError
from lib.store import EVALS, RUN_ID, Store, check_run_id

__all__ = [
    "EvalRecord", "RunInfo", "RunRecords", "RecordWriter", "git_commit", "parse_records", "write_info", "has_run",
    "read_info", "list_runs", "read_records", "finished",
]

FORMAT = "pets-eval/1"
RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"


@dataclass(frozen=True)
class EvalRecord:
    """One photo asked once: truth, the raw answer, the parsed breed, how long it took, how it failed."""

    photo_id: str
    truth: str
    breed: str  # parsed by lib.breeds.parse_breed; "unknown" when unparseable or failed
    raw: str
    latency_ms: float
    attempts: int
    error: str | None = None
    error_kind: str | None = None
    status: int | None = None
    ttfb_ms: float | None = None
    done_unix_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def correct(self) -> bool:
        return self.error is None and self.breed == self.truth


_RECORD_FIELDS = frozenset(f.name for f in fields(EvalRecord))


@dataclass(frozen=True)
class RunInfo:
    """What a run asked: which backend and model, which photos, with what options (`run.json`)."""

    run_id: str
    backend: str
    model: str
    url: str
    role: str | None  # "base", "tuned" or None when unknown: the Accuracy page's default pairing
    constrained: bool
    split: str
    data_dir: str
    photo_count: int
    concurrency: int
    limit: int | None = None
    started_unix_s: float = field(default_factory=time.time)
    finished_unix_s: float | None = None
    wall_s: float | None = None  # time spent asking, summed over resumed sessions
    sessions: int = 1
    git_commit: str | None = None
    format: str = FORMAT

    @property
    def label(self) -> str:
        """Short human label for pickers: model, split, start time."""
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.started_unix_s))
        return f"{self.backend} · {self.split} · {self.photo_count} photos · {started} UTC"

    def same_question(self, other: "RunInfo") -> bool:
        """True when `other` asked the same backend the same thing about the same photos (so can resume it).

        The URL is left out: a backend restarted on another port or a new Cloud Run URL is still the same model.
        """
        keys = ("backend", "model", "constrained", "split", "data_dir", "limit")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


@dataclass(frozen=True)
class RunRecords:
    """A run's records as read: `torn` says a crash cut the last line (the bytes after `good_bytes`)."""

    info: RunInfo
    records: tuple[EvalRecord, ...]
    torn: bool = False
    good_bytes: int = 0


def git_commit() -> str | None:
    """The checkout's commit, if this is a git checkout with git installed."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _record_from(obj: Any) -> EvalRecord:
    if not isinstance(obj, dict) or not {"photo_id", "truth", "breed"} <= obj.keys():
        raise ValueError("not an evaluation record")
    return EvalRecord(**{k: v for k, v in obj.items() if k in _RECORD_FIELDS})


def parse_records(data: bytes, where: str) -> tuple[list[EvalRecord], bool, int]:
    """(records, torn, good_bytes): a bad last line is a torn write and is left out; a bad line before it
    is an error."""
    records: list[EvalRecord] = []
    lines = data.split(b"\n")
    offset = 0
    for number, line in enumerate(lines, start=1):
        end = offset + len(line) + (1 if number < len(lines) else 0)
        if line.strip():
            try:
                records.append(_record_from(json.loads(line)))
            except (ValueError, TypeError) as exc:
                if not any(rest.strip() for rest in lines[number:]):
                    return records, True, offset
                raise UserError(
                    f"{where}: line {number} is not a record ({exc}); later lines are intact, so this is not a "
                    "crash: fix or delete that line"
                ) from None
        offset = end
    return records, False, len(data)


def _run_parts(run_id: str, name: str = "") -> tuple[str, ...]:
    return (EVALS, check_run_id(run_id), *([name] if name else []))


def write_info(store: Store, info: RunInfo) -> None:
    """Write the run's `run.json` whole (a temp name and a rename locally; one object write in a bucket)."""
    store.write_json(asdict(info), *_run_parts(info.run_id, RUN_FILE))


def has_run(store: Store, run_id: str) -> bool:
    """True when the store holds a `run.json` for `run_id`."""
    return store.exists(*_run_parts(run_id, RUN_FILE))


def read_info(store: Store, run_id: str) -> RunInfo:
    """The run's description; UserError when there is no such run or its `run.json` is not ours."""
    parts = _run_parts(run_id, RUN_FILE)
    try:
        raw = store.read_json(*parts)
    except FileNotFoundError:
        raise UserError(f"no run {run_id!r} under {store.url(EVALS)}") from None
    except ValueError as exc:
        raise UserError(f"{store.url(*parts)} is not valid JSON ({exc})") from None
    known = {f.name for f in fields(RunInfo)}
    try:
        return RunInfo(**{k: v for k, v in raw.items() if k in known})
    except (TypeError, AttributeError) as exc:
        raise UserError(f"{store.url(*parts)} is not a run description ({exc})") from None


def list_runs(store: Store) -> list[RunInfo]:
    """Every evaluation run in the store, newest first; folders without a readable run.json are skipped."""
    runs = []
    for run_id in store.listdir(EVALS):
        if not RUN_ID.match(run_id):
            continue
        try:
            runs.append(read_info(store, run_id))
        except UserError:
            continue
    return sorted(runs, key=lambda r: (r.started_unix_s, r.run_id), reverse=True)


def read_records(store: Store, run_id: str) -> RunRecords:
    """The run's description and every intact record; a torn last line is reported, not fatal."""
    info = read_info(store, run_id)
    parts = _run_parts(run_id, RECORDS_FILE)
    try:
        data = store.read_bytes(*parts)
    except FileNotFoundError:
        data = b""
    records, torn, good = parse_records(data, store.url(*parts))
    return RunRecords(info, tuple(records), torn, good)


class RecordWriter:
    """Appends records to a run's `records.jsonl`, one JSON line each, flushed per record in a local store.

    A bucket object cannot be appended to, so there the writer keeps the file's bytes and rewrites the
    object at most every `flush_interval_s` and on close: a kill loses at most that many seconds of
    answers, which the resumed run asks again. `good_bytes` first cuts a torn tail off (resume after a
    crash). Thread-safe.
    """

    def __init__(self, store: Store, run_id: str, *, good_bytes: int | None = None,
                 flush_interval_s: float = 2.0) -> None:
        self.store = store
        self.parts = _run_parts(run_id, RECORDS_FILE)
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._dirty = False
        self.written = 0
        existing = self._existing(good_bytes)
        self._file: BinaryIO | None = None
        self._buffer = bytearray()
        if store.appendable:
            if good_bytes is not None and len(existing) != good_bytes:
                store.write_bytes(existing[:good_bytes], *self.parts)
            self._file = store.open_append(*self.parts)
        else:
            self._buffer = bytearray(existing[:good_bytes] if good_bytes is not None else existing)
            if good_bytes is not None and len(existing) != good_bytes:
                self._dirty = True
                self.flush()

    def _existing(self, good_bytes: int | None) -> bytes:
        if good_bytes is None and self.store.appendable:
            return b""
        try:
            return self.store.read_bytes(*self.parts)
        except FileNotFoundError:
            return b""

    def write(self, record: EvalRecord) -> None:
        line = (json.dumps(asdict(record), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()  # survives a kill of this process; the OS writes it out
            else:
                self._buffer += line
                self._dirty = True
                if time.monotonic() - self._last_flush >= self.flush_interval_s:
                    self._flush_locked()
            self.written += 1

    def _flush_locked(self) -> None:
        if self._file is None and self._dirty:
            self.store.write_bytes(bytes(self._buffer), *self.parts)
            self._dirty = False
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finished(info: RunInfo, *, wall_s: float, complete: bool) -> RunInfo:
    """`info` after a session: time added, marked finished when every photo has a record."""
    return replace(info, wall_s=(info.wall_s or 0.0) + wall_s,
                   finished_unix_s=time.time() if complete else None)
