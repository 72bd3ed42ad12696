"""Every request is a record: a frozen dataclass, written to JSONL as the run goes, read back tolerantly.

File layout: the first line is `{"run": {...}}` (the header), then one request record per line.
Times are seconds from the task's start (`RunHeader.start_unix_s` anchors them to the wall clock).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Iterable

from lib.errors import UserError
from lib.loadgen.schedule import MODES, Mode

__all__ = ["RequestRecord", "RunHeader", "RunFile", "RecordWriter", "read_run"]

FORMAT = "loadgen-records/1"


@dataclass(frozen=True)
class RequestRecord:
    """One request: when it was due, sent, answered; how it ended. `error` set means it failed."""

    index: int
    scheduled_s: float
    sent_s: float
    first_byte_s: float | None
    done_s: float
    status: int | None
    response_bytes: int
    error: str | None = None
    error_kind: str | None = None  # connect, timeout, http, rate_limited, cold_start, interrupted, client
    image: str = ""
    warmup: bool = False
    task_index: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_ms(self) -> float:
        return (self.done_s - self.sent_s) * 1000

    @property
    def ttfb_ms(self) -> float | None:
        return None if self.first_byte_s is None else (self.first_byte_s - self.sent_s) * 1000

    @property
    def schedule_lag_ms(self) -> float:
        return (self.sent_s - self.scheduled_s) * 1000


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))


@dataclass(frozen=True)
class RunHeader:
    """What the run was asked to do; written first so a torn file still says what it was."""

    url: str
    model: str
    mode: Mode
    duration_s: float
    warmup_s: float = 0.0
    rate_rps: float | None = None
    ramp: str | None = None
    concurrency: int | None = None
    planned_requests: int | None = None
    task_index: int = 0
    task_count: int = 1
    seed: int = 0
    images: int = 0
    start_unix_s: float = field(default_factory=time.time)
    format: str = FORMAT

    def __post_init__(self) -> None:
        if self.mode not in MODES:  # a header read back from a file is only as typed as the file
            raise ValueError(f"unknown load mode {self.mode!r}")


@dataclass(frozen=True)
class RunFile:
    """A records file read back: header, records, and how many torn lines were skipped."""

    header: RunHeader
    records: list[RequestRecord]
    torn_lines: int = 0


class RecordWriter:
    """Append records to a JSONL file; `flush()` pushes the buffered lines to the OS."""

    def __init__(self, path: str | Path, header: RunHeader) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self._pending: list[RequestRecord] = []
        self.written = 0
        self._file.write(json.dumps({"run": asdict(header)}) + "\n")
        self._file.flush()

    def add(self, record: RequestRecord) -> None:
        self._pending.append(record)

    def add_many(self, records: Iterable[RequestRecord]) -> None:
        self._pending.extend(records)

    def flush(self) -> None:
        """Serialise what is pending and flush; cheap enough to call a few times a second."""
        if self._pending:
            pending, self._pending = self._pending, []
            dumps = json.dumps
            self._file.write("".join(dumps(r.__dict__) + "\n" for r in pending))
            self.written += len(pending)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_from(obj: dict[str, Any]) -> RequestRecord:
    return RequestRecord(**{k: obj[k] for k in _RECORD_FIELDS if k in obj})


def read_run(path: str | Path) -> RunFile:
    """Read a records file; a torn last line (the writer was killed mid-write) is skipped and counted."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such records file") from None
    if not lines:
        raise UserError(f"{path}: empty file, not a load generator records file")
    try:
        header = RunHeader(**json.loads(lines[0])["run"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: the first line is not a load generator run header") from None
    records: list[RequestRecord] = []
    torn = 0
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            records.append(_record_from(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                torn += 1
                continue
            raise UserError(f"{path}, line {number}: not a request record") from None
    return RunFile(header, records, torn)
