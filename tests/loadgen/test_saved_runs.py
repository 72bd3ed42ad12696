"""Load runs in the results store: saved with the one run id, listed back newest first, from a folder or a bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.errors import UserError
from lib.loadgen import LoadPlan, LoadProfile, chat_url, list_saved_runs, run_load, save_run, text_payload
from lib.store import Store, new_run_id

pytestmark = pytest.mark.slow  # sends real load to the no-op server


async def short_run(noop: str, tmp_path: Path, name: str):
    plan = LoadPlan(url=chat_url(f"{noop}/v1"), model="noop",
                    profile=LoadProfile(mode="constant", rate_rps=40, duration_s=0.25),
                    payloads=(text_payload("noop"),), out_path=tmp_path / f"{name}.jsonl", timeout_s=5.0)
    return await run_load(plan)


async def test_a_saved_run_is_listed_back_newest_first(noop, tmp_path: Path) -> None:
    first, second = await short_run(noop, tmp_path, "a"), await short_run(noop, tmp_path, "b")
    root = tmp_path / "fresh-results"  # not created yet: the first save creates it
    ids = [new_run_id("noop", now=r.header.start_unix_s) for r in (first, second)]
    urls = [save_run(r, str(root), run_id, extra={"backend": "noop"}) for r, run_id in zip((first, second), ids,
                                                                                           strict=True)]
    assert urls == [str(root / "loadgen" / i) for i in ids]
    listed = list_saved_runs(str(root))
    assert [r["run_id"] for r in listed] == ids[::-1] and listed[0]["backend"] == "noop"
    assert listed[0]["summary"]["requests_sent"] == second.summary.requests_sent == 10
    assert (root / "loadgen" / ids[0] / "records.jsonl").read_bytes() == first.records_path.read_bytes()


async def test_a_run_saved_to_a_bucket_is_listed_back(noop, tmp_path: Path, gcs) -> None:
    result = await short_run(noop, tmp_path, "a")
    run_id = new_run_id("noop")
    assert save_run(result, "gs://pets-results/hosted", run_id) == f"gs://pets-results/hosted/loadgen/{run_id}"
    [listed] = list_saved_runs(Store("gs://pets-results/hosted"))
    assert listed["run_id"] == run_id and listed["summary"] == json.loads(json.dumps(result.summary.to_dict()))
    stored = gcs.cat_file(f"pets-results/hosted/loadgen/{run_id}/records.jsonl")
    assert stored == result.records_path.read_bytes()


async def test_a_missing_bucket_is_named_and_a_bad_run_id_refused(noop, tmp_path: Path, gcs) -> None:
    result = await short_run(noop, tmp_path, "a")
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        save_run(result, "gs://no-such-bucket/hosted", new_run_id("noop"))
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        list_saved_runs("gs://no-such-bucket/hosted")
    with pytest.raises(UserError, match="is not a run id"):
        save_run(result, str(tmp_path), "../outside")
