"""The Gemma trainer's output folder and its checkpoints: a results store (`lib.store`) rooted at `--out`,
a local folder, a Cloud Storage mount or `gs://`.

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
from lib.store import Store

__all__ = [
    "MARKER",
    "META_FILE",
    "output_store",
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


def output_store(uri: str | Path) -> Store:
    """The trainer's output folder as a store (local path, Cloud Storage mount or `gs://`), with messages
    that point at `--out`."""
    return Store(uri, name="output folder", fix="pass another --out")


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


def scan_checkpoints(out: Store) -> tuple[list[Checkpoint], list[str]]:
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


def publish_checkpoint(out: Store, local: Path, meta: CheckpointMeta) -> Checkpoint:
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


def prune_checkpoints(out: Store, keep: int) -> list[str]:
    """Delete all but the newest `keep` complete checkpoints, and torn ones older than the newest complete."""
    complete, torn = scan_checkpoints(out)
    if not complete:
        return []  # nothing complete yet: a torn checkpoint may be all there is to investigate
    newest = complete[-1].step
    doomed = [c.name for c in complete[: max(0, len(complete) - max(1, keep))]]
    doomed += [name for name in torn if (m := _STEP_DIR.match(name)) and int(m.group(1)) < newest]
    for name in doomed:
        out.remove("checkpoints", name)
    return doomed


def read_meta(out: Store, checkpoint: Checkpoint) -> CheckpointMeta:
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
