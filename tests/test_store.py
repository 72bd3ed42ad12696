"""The one results store: a local folder or a bucket through the same calls; a fresh root is empty until the first
write; writes are whole; a bucket that does not exist is one plain sentence; run ids never collide."""

from __future__ import annotations

import re
import time
from pathlib import Path

import fsspec
import pytest

from lib.errors import UserError
from lib.store import Store, check_run_id, new_run_id


def test_a_local_store_writes_reads_lists_and_removes(tmp_path: Path) -> None:
    store = Store(tmp_path / "results")
    store.write_json({"a": 1}, "evals", "r1", "run.json")
    store.write_text("hello\n", "evals", "r2", "note.txt")
    assert store.read_json("evals", "r1", "run.json") == {"a": 1}
    assert store.read_text("evals", "r2", "note.txt") == "hello\n"
    assert store.listdir("evals") == ["r1", "r2"] and store.listdir("evals", "r1") == ["run.json"]
    assert store.exists("evals", "r1") and not store.exists("evals", "r3")
    assert store.url("evals", "r1") == str(tmp_path / "results" / "evals" / "r1")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("evals", "r3", "run.json")
    store.remove("evals", "r1")
    store.remove("evals", "never-there")
    assert store.listdir("evals") == ["r2"]


def test_a_root_that_does_not_exist_yet_reads_as_empty_and_the_first_write_creates_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "fresh" / "clone" / "results")
    store.check_readable()
    assert store.listdir("evals") == [] and store.find("evals") == [] and not store.exists("evals")
    assert not (tmp_path / "fresh").exists()
    store.check_writable()
    assert (tmp_path / "fresh" / "clone" / "results").is_dir()
    assert list((tmp_path / "fresh" / "clone" / "results").iterdir()) == []  # the probe is gone


def test_a_local_write_is_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_bytes(b"first version", "coldstart", "r.json")
    store.write_bytes(b"second", "coldstart", "r.json")
    assert store.read_bytes("coldstart", "r.json") == b"second"
    assert [p.name for p in (tmp_path / "coldstart").iterdir()] == ["r.json"]


def test_only_a_local_store_appends(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for line in (b"one\n", b"two\n"):
        with store.open_append("evals", "r1", "records.jsonl") as f:
            f.write(line)
    assert store.read_bytes("evals", "r1", "records.jsonl") == b"one\ntwo\n"
    bucket = Store(f"memory://append-{time.time_ns()}/x")
    assert bucket.remote and not bucket.appendable
    with pytest.raises(UserError, match="cannot be appended to"):
        bucket.open_append("records.jsonl")


def test_folders_are_copied_in_and_out(tmp_path: Path) -> None:
    local = tmp_path / "adapter"
    (local / "sub").mkdir(parents=True)
    (local / "weights.bin").write_bytes(b"w")
    (local / "sub" / "config.json").write_text("{}")
    for store in (Store(tmp_path / "out"), Store(_memory_bucket("copy"))):
        store.put_dir(local, "tuning", "r1", "adapter")
        assert store.find("tuning", "r1", "adapter") == ["sub/config.json", "weights.bin"]
        copy = store.get_dir(tmp_path / f"fetched-{store.remote}", "tuning", "r1", "adapter")
        assert (copy / "sub" / "config.json").read_text() == "{}" and (copy / "weights.bin").read_bytes() == b"w"


def test_a_sub_store_is_rooted_below_its_parent(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = store.sub("tuning", "r1")
    run.write_text("{}", "metrics.json")
    assert run.url() == store.url("tuning", "r1") and store.listdir("tuning") == ["r1"]


def test_a_root_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(UserError, match="is a file, not a folder; set RESULTS_ROOT or pass --out"):
        Store(tmp_path / "results").check_readable()
    with pytest.raises(UserError, match="cannot write"):
        Store(tmp_path / "results").write_json({}, "evals", "r1", "run.json")


def test_an_empty_root_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="the results root is empty"):
        Store("  ")


def test_a_bucket_that_does_not_exist_is_one_sentence_for_every_operation() -> None:
    store = Store("memory://no-such-bucket-7f3a/results", name="output folder", fix="pass another --out")
    expected = "memory://no-such-bucket-7f3a/results: bucket 'no-such-bucket-7f3a' does not exist; create it or " \
               "pass another --out"
    for operation in (store.check_readable, store.check_writable, lambda: store.listdir("evals"),
                      lambda: store.read_bytes("evals", "r1", "run.json"), lambda: store.exists("evals")):
        with pytest.raises(UserError) as caught:
            operation()
        assert str(caught.value) == expected


def test_two_run_ids_made_in_the_same_second_differ() -> None:
    ids = [new_run_id("pets-tuned", now=1_700_000_000) for _ in range(200)]
    assert len(set(ids)) == len(ids)  # 32 random bits each: a clash here is a one-in-200,000 event
    assert all(re.fullmatch(r"20231114T221320Z-pets-tuned-[0-9a-f]{8}", i) for i in ids)


def test_run_ids_sort_by_time_and_say_what_ran() -> None:
    assert new_run_id("pets-tuned", now=0).startswith("19700101T000000Z-pets-tuned-")
    assert new_run_id("google/gemma-3-4b-it", now=0).startswith("19700101T000000Z-google-gemma-3-4b-it-")
    assert new_run_id("///", now=0).startswith("19700101T000000Z-run-")
    earlier, later = new_run_id("zzz", now=100), new_run_id("aaa", now=101)
    assert sorted([later, earlier]) == [earlier, later]
    run_id = new_run_id("svc-003/pets-lora-003-0")
    assert check_run_id(run_id) == run_id and len(run_id.rsplit("-", 1)[-1]) == 8


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 200, "with space"])
def test_a_run_id_that_could_leave_its_folder_is_refused(bad: str) -> None:
    with pytest.raises(UserError, match="is not a run id"):
        check_run_id(bad)


def _memory_bucket(label: str) -> str:
    bucket = f"{label}-{time.time_ns()}"
    fsspec.filesystem("memory").mkdir(bucket)
    return f"memory://{bucket}/results"


@pytest.mark.slow
def test_a_bucket_store_takes_the_same_calls(gcs) -> None:
    store = Store("gs://pets-results/demo")
    store.check_readable()
    store.check_writable()
    assert store.listdir("evals") == []  # an empty prefix in an existing bucket: no runs yet
    store.write_json({"a": 1}, "evals", "r1", "run.json")
    store.write_bytes(b"x\n", "evals", "r2", "records.jsonl")
    assert store.listdir("evals") == ["r1", "r2"] and store.read_json("evals", "r1", "run.json") == {"a": 1}
    assert gcs.cat_file("pets-results/demo/evals/r1/run.json") == b'{\n  "a": 1\n}'
    assert store.url("evals", "r1") == "gs://pets-results/demo/evals/r1"
    with pytest.raises(FileNotFoundError):
        store.read_bytes("evals", "r3", "run.json")
    store.remove("evals", "r1")
    assert store.listdir("evals") == ["r2"]


@pytest.mark.slow
def test_a_missing_bucket_in_cloud_storage_is_one_line(gcs) -> None:
    store = Store("gs://no-such-bucket/results")
    for operation in (store.check_readable, lambda: store.listdir("coldstart"),
                      lambda: store.write_json({}, "coldstart", "r.json")):
        with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist") as caught:
            operation()
        assert "\n" not in str(caught.value)
