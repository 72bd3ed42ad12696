"""The evaluation format in the store: run folders, append-only records, a torn last line, roots that are missing
(empty until the first write) or cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib.accuracy import EvalRecord, RecordWriter, list_runs, parse_records, read_info, read_records
from lib.errors import UserError
from lib.store import Store
from testkit.evalkit import write_run


def test_a_run_is_written_listed_and_read_back(tmp_path: Path) -> None:
    root = Store(tmp_path)
    write_run(root, "20260101T000000Z-a-0001", [("pug_1", "pug", "pug")], backend="a", role="base", started=100)
    write_run(root, "20260102T000000Z-b-0002", [("pug_1", "pug", "beagle")], backend="b", role="tuned", started=200)
    assert [r.run_id for r in list_runs(root)] == ["20260102T000000Z-b-0002", "20260101T000000Z-a-0001"]
    run = read_records(root, "20260101T000000Z-a-0001")
    assert run.info.backend == "a" and run.info.role == "base" and not run.torn
    assert run.records == (EvalRecord("pug_1", "pug", "pug", "pug", 12.5, 1),)
    assert (tmp_path / "evals" / "20260101T000000Z-a-0001" / "records.jsonl").read_text().count("\n") == 1


def test_a_torn_last_line_is_reported_and_everything_before_it_kept(tmp_path: Path) -> None:
    root = Store(tmp_path)
    write_run(root, "r1", [("pug_1", "pug", "pug"), ("pug_2", "pug", "pug")])
    path = tmp_path / "evals" / "r1" / "records.jsonl"
    intact = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b'{"photo_id": "pug_3", "truth": "pu')  # the process died mid-write
    run = read_records(root, "r1")
    assert [r.photo_id for r in run.records] == ["pug_1", "pug_2"]
    assert run.torn and run.good_bytes == intact
    # A writer resuming the run cuts the torn tail off first, then appends.
    with RecordWriter(root, "r1", good_bytes=run.good_bytes) as w:
        w.write(EvalRecord("pug_3", "pug", "pug", "pug", 1.0, 1))
    again = read_records(root, "r1")
    assert [r.photo_id for r in again.records] == ["pug_1", "pug_2", "pug_3"] and not again.torn


def test_a_bad_line_in_the_middle_is_not_mistaken_for_a_crash() -> None:
    data = b'{"photo_id":"a_1","truth":"pug","breed":"pug","raw":"","latency_ms":1,"attempts":1}\nGARBAGE\n' \
           b'{"photo_id":"a_2","truth":"pug","breed":"pug","raw":"","latency_ms":1,"attempts":1}\n'
    with pytest.raises(UserError, match="line 2 is not a record"):
        parse_records(data, "records.jsonl")


@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n"])
def test_trailing_blank_lines_are_not_torn(tail: bytes) -> None:
    line = b'{"photo_id":"a_1","truth":"pug","breed":"pug","raw":"","latency_ms":1,"attempts":1}'
    records, torn, good = parse_records(line + tail, "x")
    assert len(records) == 1 and not torn and good == len(line + tail)


def test_a_root_that_does_not_exist_yet_is_empty_and_created_by_the_first_write(tmp_path: Path) -> None:
    fresh = Store(tmp_path / "no" / "such" / "root")  # a fresh clone's ./results, or a new folder anywhere
    fresh.check_readable()
    assert list_runs(fresh) == [] and not (tmp_path / "no").exists()  # reading creates nothing
    write_run(fresh, "r1", [("pug_1", "pug", "pug")])
    assert [r.run_id for r in list_runs(fresh)] == ["r1"]
    assert (tmp_path / "no" / "such" / "root" / "evals" / "r1" / "run.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_root_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="is not writable"):
            Store(locked).check_writable()
    finally:
        locked.chmod(0o700)


def test_run_ids_that_could_leave_the_root_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run id"):
        read_info(Store(tmp_path), "../../etc")
    with pytest.raises(UserError, match="no run 'nope'"):
        read_info(Store(tmp_path), "nope")


def test_a_root_that_is_a_file_cannot_be_read_or_written(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(UserError, match="is a file, not a folder"):
        Store(tmp_path / "results").check_readable()
    with pytest.raises(UserError, match="is not writable"):
        Store(tmp_path / "results").check_writable()
