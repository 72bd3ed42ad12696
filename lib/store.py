"""The one results store: a local folder or an fsspec URL (`gs://bucket/prefix`), the same code for both.

Every kind of run lives under one root, named by one run id (`new_run_id`):

    evals/<run_id>/run.json, records.jsonl       evaluations (lib.accuracy)
    loadgen/<run_id>/summary.json, records.jsonl load runs (lib.loadgen)
    coldstart/<run_id>.json                      cold starts (lib.cloudrun.coldstart)
    tuning/<run name>/metrics.json, adapter/...  tuning runs (lib.finetune); a trainer's --out is a store too

A local root that does not exist yet reads as empty and is created by the first write. A write is
whole or absent: a temporary name and a rename locally, one object write in a bucket (objects
cannot be appended to, so only a local store opens files for appending). A bucket that does not
exist, cannot be reached or cannot be written is a `UserError` of one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from lib.errors import UserError

__all__ = ["Store", "as_store", "new_run_id", "check_run_id", "RUN_ID", "EVALS", "LOADGEN", "COLDSTART", "TUNING"]

EVALS, LOADGEN, COLDSTART, TUNING = "evals", "loadgen", "coldstart", "tuning"
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

def new_run_id(label: str, now: float | None = None) -> str:
    """`20261128T101500Z-pets-tuned-3f2a9c1b`: sorts by start time, names what ran, has a random part.

    Two runs of the same label started in the same second (two tasks of a job, two pages) clash once
    in four billion, without any state shared between them.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")[:60] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(4)}"


def check_run_id(run_id: str) -> str:
    """`run_id` itself, or UserError when it could not be a folder name under the root (`..`, `/`, spaces)."""
    if not RUN_ID.match(run_id):
        raise UserError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-', at most 128)")
    return run_id


class Store:
    """Where results live: a local folder or an fsspec URL such as `gs://bucket/prefix`.

    `name` and `fix` shape the messages: `Store(out, name="output folder", fix="pass another --out")`.
    """

    def __init__(self, uri: str | Path, *, name: str = "results root",
                 fix: str = "set RESULTS_ROOT or pass --out") -> None:
        import fsspec

        text = str(uri).strip().rstrip("/")
        self.name, self.fix = name, fix
        if not text:
            raise UserError(f"the {name} is empty; {fix}")
        self.remote = "://" in text and not text.startswith("file://")
        if self.remote:
            try:
                self.fs, self.root = fsspec.core.url_to_fs(text)
            except (ImportError, ValueError) as exc:
                raise UserError(f"{text}: cannot open this {name} ({exc})") from None
            self.uri = text
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(text.removeprefix("file://")).expanduser().resolve())
            self.uri = self.root
        self._bucket_ok = False

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def appendable(self) -> bool:
        """True for a local folder: files can be opened for appending (objects in a bucket cannot)."""
        return not self.remote

    def path(self, *parts: str) -> str:
        """Path of `parts` below the root, in the filesystem's own notation."""
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """User-facing address of `parts` below the root (a `gs://` URL for a bucket)."""
        return "/".join([self.uri, *parts])

    def sub(self, *parts: str) -> Store:
        """The store rooted at `parts` below this one (a tuning run's folder, say)."""
        return Store(self.url(*parts), name=self.name, fix=self.fix)

    # --- checks ----------------------------------------------------------------------------------

    @property
    def bucket(self) -> str | None:
        """The bucket of a remote store (the first part of its path), None for a local one."""
        return self.root.lstrip("/").split("/", 1)[0] if self.remote else None

    def _require_bucket(self) -> None:
        if not self.remote or self._bucket_ok:
            return
        try:
            exists = self.fs.exists(self.bucket)
        except Exception as exc:  # auth and network failures come in many types; the message says which
            raise UserError(f"{self.uri}: cannot reach the {self.name}'s bucket ({_brief(exc)}); check the "
                            f"credentials and network, or {self.fix}") from None
        if not exists:
            raise UserError(f"{self.uri}: bucket {self.bucket!r} does not exist; create it or {self.fix}")
        self._bucket_ok = True

    def check_readable(self) -> None:
        """Raise UserError if reading cannot work: a bucket that does not exist or cannot be reached, or a
        local root that is a file. A local root that does not exist yet is fine: it is empty."""
        if self.remote:
            self._require_bucket()
        elif Path(self.root).exists() and not Path(self.root).is_dir():
            raise UserError(f"{self.name} {self.root} is a file, not a folder; {self.fix}")

    def check_writable(self) -> None:
        """Create the root if needed and prove it can be written, or raise UserError saying why not."""
        self._require_bucket()
        probe = f".write-probe-{secrets.token_hex(4)}"
        self._write(b"ok", (probe,), failure="is not writable")
        try:
            self.fs.rm_file(self.path(probe))
        except Exception as exc:  # written but not removable: odd permissions, still worth saying
            self._fail(exc, f"cannot remove {probe} from it")

    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        """Raise the one-line UserError for a failed operation (a missing bucket named as such)."""
        self._require_bucket()
        raise UserError(f"{self.name} {self.uri}: {what} ({_brief(exc)}); fix its permissions or {self.fix}") from None

    # --- reading ---------------------------------------------------------------------------------

    def exists(self, *parts: str) -> bool:
        """True when `parts` is a file or a folder under the root."""
        where = self.path(*parts)
        try:
            if self.remote:
                self.fs.invalidate_cache(where)  # a listing cached earlier may predate another process's write
            found = bool(self.fs.exists(where))
        except Exception as exc:
            self._fail(exc, f"cannot read {'/'.join(parts)}")
        if not found:
            self._require_bucket()
        return found

    def read_bytes(self, *parts: str) -> bytes:
        """The whole file at `parts`; FileNotFoundError when there is none."""
        try:
            return bytes(self.fs.cat_file(self.path(*parts)))
        except FileNotFoundError:
            self._require_bucket()
            raise
        except IsADirectoryError:
            raise FileNotFoundError(self.url(*parts)) from None
        except Exception as exc:
            self._fail(exc, f"cannot read {'/'.join(parts)}")

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode()

    def read_json(self, *parts: str) -> Any:
        """The JSON document at `parts`: FileNotFoundError when absent, ValueError when not JSON."""
        return json.loads(self.read_bytes(*parts))

    def listdir(self, *parts: str) -> list[str]:
        """Names directly under `parts`, sorted ([] when it does not exist yet)."""
        where = self.path(*parts)
        try:
            if self.remote:
                self.fs.invalidate_cache(where)  # another process (a job, a CLI) may have written since
            entries = self.fs.ls(where, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            self._require_bucket()
            return []
        except Exception as exc:
            self._fail(exc, f"cannot list {'/'.join(parts) or 'it'}")
        own = where.rstrip("/")  # some stores list a folder's placeholder object as an entry of itself
        return sorted({str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries if str(e).rstrip("/") != own})

    def find(self, *parts: str) -> list[str]:
        """Every file below `parts`, as paths relative to it."""
        source = self.path(*parts)
        try:
            files = self.fs.find(source)
        except FileNotFoundError:
            return []
        except Exception as exc:
            self._fail(exc, f"cannot list {'/'.join(parts)}")
        return sorted(str(f)[len(source):].lstrip("/") for f in files)

    # --- writing ---------------------------------------------------------------------------------

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write one file whole: locally through a temporary name, so readers never see half of it."""
        self._write(data, parts, failure=f"cannot write {'/'.join(parts)}")

    def _write(self, data: bytes, parts: tuple[str, ...], *, failure: str) -> None:
        if self.remote:
            try:
                self.fs.pipe_file(self.path(*parts), data)
            except Exception as exc:
                self._fail(exc, failure)
            return
        target = Path(self.path(*parts))
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._fail(exc, failure)

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode(), *parts)

    def write_json(self, obj: Any, *parts: str) -> None:
        self.write_bytes(json.dumps(obj, indent=2, sort_keys=True).encode(), *parts)

    def open_append(self, *parts: str) -> BinaryIO:
        """A local file opened for appending (JSONL records); a bucket has no append, so UserError there."""
        if self.remote:
            raise UserError(f"{self.url(*parts)}: objects in a bucket cannot be appended to; rewrite them whole")
        target = Path(self.path(*parts))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            return open(target, "ab")
        except OSError as exc:
            self._fail(exc, f"cannot write {'/'.join(parts)}")

    def remove(self, *parts: str) -> None:
        """Delete the file or folder at `parts` (nothing to do when it is not there)."""
        where = self.path(*parts)
        try:
            if self.fs.exists(where):
                self.fs.rm(where, recursive=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            self._fail(exc, f"cannot remove {'/'.join(parts)}")

    def put_file(self, local: Path, *parts: str) -> None:
        """Copy one local file to `parts` (whole, like `write_bytes`)."""
        if not self.remote:
            self.write_bytes(Path(local).read_bytes(), *parts)
            return
        try:
            self.fs.put_file(str(local), self.path(*parts))
        except Exception as exc:
            self._fail(exc, f"cannot write {'/'.join(parts)}")

    def put_dir(self, local: Path, *parts: str) -> None:
        """Copy a local folder to `parts`, replacing what is there."""
        target = self.path(*parts)
        try:
            if self.remote:
                for file in sorted(p for p in Path(local).rglob("*") if p.is_file()):
                    self.fs.put_file(str(file), f"{target}/{file.relative_to(local).as_posix()}")
                return
            if Path(target).exists():
                shutil.rmtree(target)
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(local, target)
        except Exception as exc:
            self._fail(exc, f"cannot write {'/'.join(parts)}")

    def get_dir(self, local: Path, *parts: str) -> Path:
        """A local copy of the folder at `parts` (the folder itself when the store is local)."""
        if not self.remote:
            return Path(self.path(*parts))
        if local.exists():
            shutil.rmtree(local)
        local.mkdir(parents=True)
        source = self.path(*parts)
        try:
            for relative in self.find(*parts):
                (local / relative).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{source}/{relative}", str(local / relative))
        except Exception as exc:
            self._fail(exc, f"cannot read {'/'.join(parts)}")
        return local


def as_store(root: Store | str | Path) -> Store:
    """`root` as a Store (a settings string, a path or a Store already)."""
    return root if isinstance(root, Store) else Store(root)


def _brief(exc: BaseException) -> str:
    """`Type: first line of the message`, so every store error stays one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
