"""Checkpoints of the Gemma trainer: complete only with the marker, torn ones never resumed or lost."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from lib.errors import UserError
from lib.finetune import (
    MARKER,
    META_FILE,
    Checkpoint,
    CheckpointMeta,
    check_compatible,
    output_store,
    prune_checkpoints,
    publish_checkpoint,
    read_meta,
    scan_checkpoints,
)


def make_entry(root: Path, name: str, marker: bool) -> None:
    folder = root / "checkpoints" / name
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    if marker:
        (folder / MARKER).write_text("ok\n")


def staged(tmp_path: Path, step: int) -> Path:
    """What the Trainer leaves in its staging folder after a save."""
    local = tmp_path / "staging" / f"checkpoint-{step}"
    local.mkdir(parents=True)
    (local / "adapter_model.safetensors").write_bytes(b"w" * 10)
    (local / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return local


@pytest.mark.parametrize(
    "entries, complete, torn",
    [
        ({"step-2": True, "step-10": True}, [2, 10], []),  # numeric order, not string order
        ({"step-2": True, "step-4": False}, [2], ["step-4"]),  # no marker: killed mid-save
        ({"step-4.tmp": True}, [], ["step-4.tmp"]),  # marker written but never renamed
        ({"notes": True, "step-x": True}, [], []),  # not ours: ignored
    ],
)
def test_scan_tells_complete_from_torn(tmp_path: Path, entries: dict[str, bool], complete: list[int], torn: list[str]):
    for name, marker in entries.items():
        make_entry(tmp_path, name, marker)
    found, torn_found = scan_checkpoints(output_store(tmp_path))
    assert [c.step for c in found] == complete
    assert torn_found == torn


def test_publish_local_renames_staging_into_a_complete_step(tmp_path: Path):
    out = output_store(tmp_path / "out")
    make_entry(tmp_path / "out", "step-4", marker=False)  # a torn copy of the same step from a killed attempt
    saved = publish_checkpoint(out, staged(tmp_path, 4), CheckpointMeta("m", "abc", 4, 8))
    folder = tmp_path / "out" / "checkpoints" / "step-4"
    assert saved == Checkpoint(4, "step-4")
    assert (folder / MARKER).exists() and (folder / "trainer_state.json").exists()
    meta = json.loads((folder / META_FILE).read_text())
    assert meta == {"model_id": "m", "config_sha256": "abc", "step": 4, "lora_r": 8}
    assert not (tmp_path / "staging" / "checkpoint-4").exists()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["step-4"]  # no .tmp left behind
    assert read_meta(out, saved).step == 4


@pytest.mark.parametrize(
    "complete, torn, keep, left",
    [
        ([2, 4, 6], [], 2, ["step-4", "step-6"]),
        ([], ["step-2.tmp", "step-4"], 1, ["step-2.tmp", "step-4"]),  # nothing complete: keep the evidence
        ([2], ["step-4"], 1, ["step-2", "step-4"]),  # torn but newer than the only complete one
        ([2, 6], ["step-4", "step-8.tmp"], 1, ["step-6", "step-8.tmp"]),
        ([2, 4], [], 5, ["step-2", "step-4"]),
    ],
)
def test_prune_never_loses_the_newest_complete_checkpoint(
    tmp_path: Path, complete: list[int], torn: list[str], keep: int, left: list[str]
):
    for step in complete:
        make_entry(tmp_path, f"step-{step}", marker=True)
    for name in torn:
        make_entry(tmp_path, name, marker=False)
    prune_checkpoints(output_store(tmp_path), keep)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(left)


def test_object_store_gets_the_marker_after_the_files(tmp_path: Path):
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(bucket)
    out = output_store(f"memory://{bucket}/run")
    out.check_writable()
    written: list[str] = []
    real_pipe, real_put = fs.pipe_file, fs.put_file

    def pipe_file(path: str, data: bytes, **kw: Any) -> Any:  # fsspec's own writes, recorded in order
        written.append(path)
        return real_pipe(path, data, **kw)

    def put_file(lpath: str, rpath: str, **kw: Any) -> Any:
        written.append(rpath)
        return real_put(lpath, rpath, **kw)

    fs.pipe_file, fs.put_file = pipe_file, put_file
    try:
        publish_checkpoint(out, staged(tmp_path, 6), CheckpointMeta("m", "abc", 6, 8))
    finally:
        del fs.pipe_file, fs.put_file
    assert written[-1].endswith(f"checkpoints/step-6/{MARKER}")
    assert len(written) == 4  # weights, trainer state, metadata, then the marker
    fs.pipe_file(f"/{bucket}/run/checkpoints/step-8/adapter_model.safetensors", b"half")  # killed before its marker
    complete, torn = scan_checkpoints(out)
    assert [c.step for c in complete] == [6] and torn == ["step-8"]
    copy = out.get_dir(tmp_path / "fetched", "checkpoints", "step-6")
    assert json.loads((copy / "trainer_state.json").read_text()) == {"global_step": 6}


@pytest.mark.parametrize(
    "where, message",
    [
        ("memory://no-such-bucket-{u}/run", "does not exist; create it or pass another --out"),
        ("{tmp}/a-file/out", "output folder .*/a-file/out: is not writable"),
    ],
)
def test_unusable_output_folder_is_a_user_error(tmp_path: Path, where: str, message: str):
    (tmp_path / "a-file").write_text("not a folder")
    out = output_store(where.format(u=uuid.uuid4().hex[:8], tmp=tmp_path))
    with pytest.raises(UserError, match=message):
        out.check_writable()


@pytest.mark.parametrize(
    "model_id, sha, ok",
    [("google/gemma-3-4b-it", "abc123", True), ("google/gemma-3-12b-it", "abc123", False),
     ("google/gemma-3-4b-it", "def456", False)],
)
def test_resume_refuses_a_checkpoint_of_another_model(model_id: str, sha: str, ok: bool):
    meta = CheckpointMeta("google/gemma-3-4b-it", "abc123", 10, 16)
    if ok:
        check_compatible(meta, model_id, sha, "ckpt")
    else:
        with pytest.raises(UserError, match="was trained from 'google/gemma-3-4b-it'"):
            check_compatible(meta, model_id, sha, "ckpt")


def test_checkpoint_without_our_metadata_is_refused(tmp_path: Path):
    make_entry(tmp_path, "step-3", marker=True)
    with pytest.raises(UserError, match="not written by this trainer"):
        read_meta(output_store(tmp_path), Checkpoint(3, "step-3"))
