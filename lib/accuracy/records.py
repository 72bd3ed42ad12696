"""The one results format: evaluation runs under a results root, a local folder or `gs://bucket/prefix`.

Layout: `<root>/evals/<run_id>/run.json` (what was asked) and `records.jsonl` (one answer per line,
append-only). Every byte goes through fsspec, so a bucket and a folder take the same code path; only
appending differs, because objects in a bucket cannot be appended to (see `RecordWriter`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lib.errors import UserError

__all__ = [
    "EvalRecord", "RunInfo", "RunRecords", "ResultsRoot", "RecordWriter", "new_run_id", "git_commit",
    "parse_records",
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


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_run_id(backend: str, now: float | None = None) -> str:
    """`20261128T101500Z-pets-tuned-3f2a`: sorts by start time, says the backend, never collides."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", backend).strip("-")[:60] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


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
    """(records, torn, good_bytes): a bad last line is a torn write and is left out; a bad line before it is an error."""
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


class ResultsRoot:
    """Where runs live: a local folder or an fsspec URL such as `gs://bucket/prefix`; the same code for both."""

    def __init__(self, uri: str | Path):
        import fsspec

        text = str(uri).strip().rstrip("/")
        if not text:
            raise UserError("the results root is empty; set RESULTS_ROOT or pass --out")
        self.remote = "://" in text and not text.startswith("file://")
        if self.remote:
            try:
                self.fs, self.root = fsspec.core.url_to_fs(text)
            except (ImportError, ValueError) as exc:
                raise UserError(f"{text}: cannot open this results root ({exc})") from None
            self.uri = text
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(text.removeprefix("file://")).expanduser().resolve())
            self.uri = self.root
        self.appendable = not self.remote

    def __repr__(self) -> str:
        return f"ResultsRoot({self.uri!r})"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """User-facing address (a `gs://` URL for a bucket)."""
        return "/".join([self.uri, *parts])

    # --- checks ----------------------------------------------------------------------------------

    def _check_bucket(self) -> None:
        bucket = self.root.lstrip("/").split("/", 1)[0]
        try:
            exists = self.fs.exists(bucket)
        except Exception as exc:  # auth and network failures come in many types; the message says which
            raise UserError(f"{self.uri}: cannot reach the results bucket ({type(exc).__name__}: {exc})") from None
        if not exists:
            raise UserError(f"{self.uri}: bucket {bucket!r} does not exist; create it or set RESULTS_ROOT/--out")

    def check_readable(self) -> None:
        """Raise UserError if the root is not there at all (a typo, an unmounted disk, a missing bucket)."""
        if self.remote:
            self._check_bucket()
        elif not Path(self.root).is_dir():
            raise UserError(f"results root {self.root} does not exist; run `python -m lib eval` first or set "
                            "RESULTS_ROOT to the folder that holds your runs")

    def check_writable(self) -> None:
        """Create `<root>/evals` (a local root only if its parent exists) and prove it is writable."""
        if self.remote:
            self._check_bucket()
        else:
            root = Path(self.root)
            if not root.is_dir() and not root.parent.is_dir():
                raise UserError(f"results root {root} does not exist (nor does {root.parent}); create it or set "
                                "RESULTS_ROOT/--out to an existing folder")
        probe = self.path("evals", f".write-probe-{secrets.token_hex(4)}")
        try:
            if not self.remote:
                Path(self.path("evals")).mkdir(parents=True, exist_ok=True)
            self.fs.pipe_file(probe, b"ok")
            self.fs.rm_file(probe)
        except Exception as exc:  # PermissionError locally, HttpError 403 from a bucket, ...
            raise UserError(f"results root {self.uri} cannot be written ({type(exc).__name__}: {exc}); "
                            "fix its permissions or set RESULTS_ROOT/--out") from None

    # --- runs ----------------------------------------------------------------------------------

    def run_path(self, run_id: str, name: str = "") -> str:
        if not _RUN_ID.match(run_id):
            raise UserError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-')")
        return self.path("evals", run_id, *([name] if name else []))

    def write_info(self, info: RunInfo) -> None:
        """Write `run.json` whole (a temp name and a rename locally; one object write in a bucket)."""
        data = json.dumps(asdict(info), indent=2, sort_keys=True).encode()
        target = self.run_path(info.run_id, RUN_FILE)
        if self.remote:
            self.fs.pipe_file(target, data)
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, target)

    def read_info(self, run_id: str) -> RunInfo:
        target = self.run_path(run_id, RUN_FILE)
        try:
            raw = json.loads(self.fs.cat_file(target))
        except FileNotFoundError:
            raise UserError(f"no run {run_id!r} under {self.url('evals')}") from None
        except ValueError as exc:
            raise UserError(f"{self.url('evals', run_id, RUN_FILE)} is not valid JSON ({exc})") from None
        known = {f.name for f in fields(RunInfo)}
        try:
            return RunInfo(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise UserError(f"{self.url('evals', run_id, RUN_FILE)} is not a run description ({exc})") from None

    def list_runs(self) -> list[RunInfo]:
        """Every run under the root, newest first; folders without a readable run.json are skipped."""
        self.fs.invalidate_cache()
        where = self.path("evals")
        try:
            entries = self.fs.ls(where, detail=False)
        except FileNotFoundError:
            return []
        runs = []
        for entry in entries:
            run_id = entry.rstrip("/").rsplit("/", 1)[-1]
            if not _RUN_ID.match(run_id):
                continue
            try:
                runs.append(self.read_info(run_id))
            except UserError:
                continue
        return sorted(runs, key=lambda r: (r.started_unix_s, r.run_id), reverse=True)

    def read_records(self, run_id: str) -> RunRecords:
        """The run's description and every intact record; a torn last line is reported, not fatal."""
        info = self.read_info(run_id)
        target = self.run_path(run_id, RECORDS_FILE)
        try:
            data = self.fs.cat_file(target)
        except FileNotFoundError:
            data = b""
        records, torn, good = parse_records(data, self.url("evals", run_id, RECORDS_FILE))
        return RunRecords(info, tuple(records), torn, good)

    def writer(self, run_id: str, *, good_bytes: int | None = None, flush_interval_s: float = 2.0) -> "RecordWriter":
        """An appender for the run's records; `good_bytes` first cuts a torn tail off (resume after a crash)."""
        return RecordWriter(self, run_id, good_bytes=good_bytes, flush_interval_s=flush_interval_s)


class RecordWriter:
    """Appends records, one JSON line each, flushed per record to a local file.

    A bucket object cannot be appended to, so there the writer keeps the file's bytes and rewrites the
    object at most every `flush_interval_s` and on close: a kill loses at most that many seconds of
    answers, which the resumed run asks again. Thread-safe.
    """

    def __init__(self, root: ResultsRoot, run_id: str, *, good_bytes: int | None = None,
                 flush_interval_s: float = 2.0) -> None:
        self.root = root
        self.path = root.run_path(run_id, RECORDS_FILE)
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._dirty = False
        self.written = 0
        existing = self._existing(good_bytes)
        if root.appendable:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if good_bytes is not None and len(existing) != good_bytes:
                self._replace(existing[:good_bytes])
            self._file = open(self.path, "ab")
            self._buffer = bytearray()
        else:
            self._file = None
            self._buffer = bytearray(existing[:good_bytes] if good_bytes is not None else existing)
            if good_bytes is not None and len(existing) != good_bytes:
                self._dirty = True
                self.flush()

    def _existing(self, good_bytes: int | None) -> bytes:
        if good_bytes is None and self.root.appendable:
            return b""
        try:
            return self.root.fs.cat_file(self.path)
        except FileNotFoundError:
            return b""

    def _replace(self, data: bytes) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, self.path)

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
            self.root.fs.pipe_file(self.path, bytes(self._buffer))
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

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finished(info: RunInfo, *, wall_s: float, complete: bool) -> RunInfo:
    """`info` after a session: time added, marked finished when every photo has a record."""
    return replace(info, wall_s=(info.wall_s or 0.0) + wall_s,
                   finished_unix_s=time.time() if complete else None)
