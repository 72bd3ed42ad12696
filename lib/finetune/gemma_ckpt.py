"""The Gemma trainer's output folder and its checkpoints: local folder, Cloud Storage mount or `gs://`.

A checkpoint counts only once its `COMPLETE` marker exists, and the marker is written last:
locally a checkpoint is assembled in `checkpoints/step-N.tmp` and renamed to `step-N` (atomic
on one filesystem); on an object store, where there is no rename, the files are uploaded to
`step-N/` and the marker uploaded after them. A job killed mid-save leaves a torn checkpoint
that resume ignores, and nothing complete is deleted unless a newer complete one exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from lib.errors import UserError

__all__ = [
    "MARKER",
    "META_FILE",
    "OutputFolder",
    "Checkpoint",
    "CheckpointMeta",
    "scan_checkpoints",
    "publish_checkpoint",
    "prune_checkpoints",
    "read_meta",
    "check_compatible",
]

MARKER = "COMPLETE"
META_FILE = "pets_checkpoint.json"
_STEP_DIR = re.compile(r"^step-(\d+)(\.tmp)?$")


class OutputFolder:
    """Where a run writes: a local path (or a bucket mounted as one) or an fsspec URL such as `gs://b/p`."""

    def __init__(self, uri: str | Path):
        import fsspec

        text = str(uri).rstrip("/")
        self.remote = "://" in text and not text.startswith("file://")
        if self.remote:
            self.fs, self.root = fsspec.core.url_to_fs(text)
            self.uri = text
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(text.removeprefix("file://")).expanduser().resolve())
            self.uri = self.root

    def path(self, *parts: str) -> str:
        """Path of `parts` below the root, in the filesystem's own notation."""
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """User-facing address of `parts` below the root (a `gs://` URL for a bucket)."""
        return "/".join([self.uri, *parts])

    def check_writable(self) -> None:
        """Create the folder if needed and prove it is writable, or raise UserError saying why not."""
        if self.remote:
            bucket = self.root.lstrip("/").split("/", 1)[0]
            try:
                bucket_exists = self.fs.exists(bucket)
            except Exception as exc:  # auth and network failures come in many types; the message says which
                raise UserError(f"{self.uri}: cannot reach the output bucket ({type(exc).__name__}: {exc})") from None
            if not bucket_exists:
                raise UserError(f"{self.uri}: bucket {bucket!r} does not exist; create it or pass another --out")
        probe = self.path(".write-probe")
        try:
            if not self.remote:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            self.fs.pipe_file(probe, b"ok")
            self.fs.rm_file(probe)
        except (OSError, PermissionError) as exc:
            raise UserError(f"{self.uri}: the output folder is not writable ({exc.__class__.__name__}: {exc})") from None
        except Exception as exc:
            raise UserError(f"{self.uri}: cannot write to the output folder ({type(exc).__name__}: {exc})") from None

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def read_text(self, *parts: str) -> str:
        return self.fs.cat_file(self.path(*parts)).decode()

    def write_text(self, text: str, *parts: str) -> None:
        """Write one small file; locally through a temporary name so readers never see half of it."""
        if self.remote:
            self.fs.pipe_file(self.path(*parts), text.encode())
            return
        target = Path(self.path(*parts))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)

    def put_dir(self, local: Path, *parts: str) -> None:
        """Copy a local folder to `parts` (replacing what is there)."""
        target = self.path(*parts)
        if self.remote:
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                self.fs.put_file(str(file), f"{target}/{file.relative_to(local).as_posix()}")
            return
        if Path(target).exists():
            shutil.rmtree(target)
        shutil.copytree(local, target)

    def listdir(self, *parts: str) -> list[str]:
        """Names directly under `parts` ([] if it does not exist)."""
        where = self.path(*parts)
        if not self.fs.exists(where):
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(where, detail=False))

    def remove(self, *parts: str) -> None:
        where = self.path(*parts)
        if self.fs.exists(where):
            self.fs.rm(where, recursive=True)

    def get_dir(self, local: Path, *parts: str) -> Path:
        """A local copy of the folder at `parts` (the folder itself when the output is local)."""
        if not self.remote:
            return Path(self.path(*parts))
        if local.exists():
            shutil.rmtree(local)
        local.mkdir(parents=True)
        source = self.path(*parts)
        for remote_file in self.fs.find(source):
            relative = remote_file[len(source):].lstrip("/")
            (local / relative).parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote_file, str(local / relative))
        return local


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint was trained from: resume refuses a checkpoint of another model."""

    model_id: str
    config_sha256: str
    step: int
    lora_r: int


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint: its training step and its folder name under `checkpoints/`."""

    step: int
    name: str


def scan_checkpoints(out: OutputFolder) -> tuple[list[Checkpoint], list[str]]:
    """(complete checkpoints oldest first, names of torn ones): torn = `.tmp` or no marker."""
    complete, torn = [], []
    for name in out.listdir("checkpoints"):
        match = _STEP_DIR.match(name)
        if match is None:
            continue
        if match.group(2) is None and out.exists("checkpoints", name, MARKER):
            complete.append(Checkpoint(int(match.group(1)), name))
        else:
            torn.append(name)
    return sorted(complete, key=lambda c: c.step), sorted(torn)


def publish_checkpoint(out: OutputFolder, local: Path, meta: CheckpointMeta) -> Checkpoint:
    """Make the trainer's local checkpoint folder `local` a complete `checkpoints/step-N` (marker last)."""
    name = f"step-{meta.step}"
    meta_text = json.dumps(asdict(meta), indent=2)
    (local / META_FILE).write_text(meta_text)
    if out.remote:
        out.remove("checkpoints", name)  # a torn copy of this very step from a killed attempt
        out.put_dir(local, "checkpoints", name)
        out.write_text("ok\n", "checkpoints", name, MARKER)
        return Checkpoint(meta.step, name)
    final = Path(out.path("checkpoints", name))
    tmp = final.with_name(name + ".tmp")
    for leftover in (tmp, final):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(local, tmp)  # the trainer's staging folder is on the same filesystem: a rename, no copy
    except OSError:
        shutil.copytree(local, tmp)
    (tmp / MARKER).write_text("ok\n")
    os.replace(tmp, final)
    return Checkpoint(meta.step, name)


def prune_checkpoints(out: OutputFolder, keep: int) -> list[str]:
    """Delete all but the newest `keep` complete checkpoints, and torn ones older than the newest complete."""
    complete, torn = scan_checkpoints(out)
    if not complete:
        return []  # nothing complete yet: a torn checkpoint may be all there is to investigate
    newest = complete[-1].step
    doomed = [c.name for c in complete[: max(0, len(complete) - max(1, keep))]]
    doomed += [name for name in torn if int(_STEP_DIR.match(name).group(1)) < newest]  # type: ignore[union-attr]
    for name in doomed:
        out.remove("checkpoints", name)
    return doomed


def read_meta(out: OutputFolder, checkpoint: Checkpoint) -> CheckpointMeta:
    """The metadata of a complete checkpoint; UserError if it was not written by this trainer."""
    try:
        raw = json.loads(out.read_text("checkpoints", checkpoint.name, META_FILE))
        return CheckpointMeta(**raw)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise UserError(
            f"{out.url('checkpoints', checkpoint.name)} has no readable {META_FILE} ({exc}); "
            "it was not written by this trainer: use a new --out folder"
        ) from None


def check_compatible(meta: CheckpointMeta, model_id: str, config_sha256: str, where: str) -> None:
    """Refuse to resume a checkpoint trained from another model (or the same name with another config)."""
    if meta.model_id != model_id or meta.config_sha256 != config_sha256:
        raise UserError(
            f"{where} was trained from {meta.model_id!r} (config {meta.config_sha256[:12]}), not from "
            f"{model_id!r} (config {config_sha256[:12]}); pass the same --model-id or a new --out folder"
        )
