"""A results root in Cloud Storage (`gs://bucket/prefix`) through gcsfs, against fake-gcs-server (real JSON API):
the same code path as a folder: write a run, list it, read it back, resume it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.accuracy import (
    EvalOptions,
    compare_runs,
    list_runs,
    load_run,
    read_info,
    read_records,
    run_evaluation,
    write_info,
)
from lib.errors import UserError
from lib.registry import Backend
from lib.store import Store
from testkit.evalkit import write_run

pytestmark = pytest.mark.slow

ROOT = "gs://pets-results/demo"


def test_a_run_in_a_bucket_is_written_listed_read_and_resumed(gcs, photos: Path, scripted) -> None:
    server = scripted(answer="beagle")
    b = Backend(name="m", base_url=server.url, model="m", family="openai")
    first = run_evaluation(EvalOptions(b, photos, ROOT, concurrency=4, split="all", limit=12))
    assert first.run_url == f"{ROOT}/evals/{first.run_id}" and first.complete
    assert gcs.exists(f"pets-results/demo/evals/{first.run_id}/records.jsonl")
    root = Store(ROOT)
    assert [r.run_id for r in list_runs(root)] == [first.run_id]
    run = read_records(root, first.run_id)
    assert len(run.records) == 12 and not run.torn
    assert sum(r.correct for r in run.records) == 3 == first.metrics.correct

    # A crash before the end: the object holds 5 records and half of a sixth; the run is unfinished.
    data = gcs.cat_file(f"pets-results/demo/evals/{first.run_id}/records.jsonl")
    lines = data.splitlines(keepends=True)
    gcs.pipe_file(f"pets-results/demo/evals/{first.run_id}/records.jsonl", b"".join(lines[:5]) + lines[5][:20])
    info = read_info(root, first.run_id)
    write_info(root, type(info)(**{**info.__dict__, "finished_unix_s": None}))
    assert read_records(root, first.run_id).torn
    before = server.requests
    again = run_evaluation(EvalOptions(b, photos, ROOT, concurrency=4, split="all", limit=12))
    assert again.run_id == first.run_id and again.resumed and again.torn_repaired
    assert again.skipped == 5 and again.asked == 7 and server.requests - before == 7
    final = read_records(root, first.run_id)
    assert len(final.records) == 12 and len({r.photo_id for r in final.records}) == 12 and not final.torn


def test_the_report_reads_runs_from_a_bucket(gcs) -> None:
    root = Store(ROOT)
    write_run(root, "base", [("pug_1", "pug", "beagle"), ("pug_2", "pug", "pug")], role="base", started=1)
    write_run(root, "tuned", [("pug_1", "pug", "pug"), ("pug_2", "pug", "pug")], role="tuned", started=2)
    view = compare_runs(load_run(root, "base"), load_run(root, "tuned"))
    assert view.comparison.fixed == ("pug_1",) and view.tuned.metrics.accuracy == 1.0


def test_a_bucket_that_does_not_exist_is_a_clear_error(gcs, photos: Path) -> None:
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        Store("gs://no-such-bucket/x").check_readable()
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        run_evaluation(EvalOptions(Backend(name="m", base_url="http://127.0.0.1:9/v1", model="m"), photos,
                                   "gs://no-such-bucket/x", split="all"))
