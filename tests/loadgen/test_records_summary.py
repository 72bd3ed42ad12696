"""Records survive a torn file; the summary's figures and warnings match hand-computed values."""

from __future__ import annotations

import json

import pytest

from lib.errors import UserError
from lib.loadgen import RecordWriter, RequestRecord, RunHeader, read_run, summarize, timeline


def rec(i, sched, sent, done, *, error=None, kind=None, warmup=False, fb=None):
    return RequestRecord(
        i,
        sched,
        sent,
        fb if fb is not None else (None if error else sent + (done - sent) / 2),
        done,
        None if kind in ("connect", "timeout", "interrupted") else (200 if not error else 500),
        10,
        error,
        kind,
        "x.jpg",
        warmup,
    )


def test_records_round_trip_and_are_flushed_as_they_go(tmp_path):
    path = tmp_path / "run.jsonl"
    writer = RecordWriter(
        path, RunHeader(url="http://x/v1/chat/completions", model="m", mode="poisson", duration_s=1)
    )
    writer.add(rec(0, 0.0, 0.001, 0.010))
    writer.flush()
    assert len(path.read_text().splitlines()) == 2  # header + one record, before close
    writer.add(rec(1, 0.5, 0.5, 0.6, error="HTTP 500", kind="http"))
    writer.close()
    run = read_run(path)
    assert run.header.model == "m" and run.torn_lines == 0
    assert run.records == [rec(0, 0.0, 0.001, 0.010), rec(1, 0.5, 0.5, 0.6, error="HTTP 500", kind="http")]


def test_a_torn_last_line_is_skipped_and_counted_but_a_torn_middle_is_an_error(tmp_path):
    path = tmp_path / "run.jsonl"
    with RecordWriter(path, RunHeader(url="u", model="m", mode="constant", duration_s=1)) as writer:
        writer.add_many([rec(0, 0, 0, 0.1), rec(1, 0.1, 0.1, 0.2)])
    text = path.read_text()
    path.write_text(text[:-25])  # killed mid-write
    run = read_run(path)
    assert len(run.records) == 1 and run.torn_lines == 1
    lines = text.splitlines()
    path.write_text("\n".join([lines[0], "{garbage", lines[2]]) + "\n")
    with pytest.raises(UserError, match="line 2"):
        read_run(path)
    path.write_text("")
    with pytest.raises(UserError, match="empty"):
        read_run(path)


def test_summary_counts_failures_by_kind_and_says_they_are_left_out_of_latency():
    records = [
        rec(i, i * 0.1, i * 0.1 + 0.001, i * 0.1 + 0.001 + (i + 1) / 1000) for i in range(10)
    ]  # 1..10 ms
    records += [
        rec(10, 1.0, 1.0, 1.5, error="no answer", kind="timeout"),
        rec(11, 1.1, 1.1, 1.1, error="cannot connect", kind="connect"),
        rec(12, 1.2, 1.2, 1.2, error="HTTP 500", kind="http"),
        rec(13, 0.0, 0.0, 0.01, warmup=True),
    ]
    s = summarize(records, duration_s=2.0, target_rate_rps=6.5)
    assert (s.requests_sent, s.requests_ok, s.requests_failed, s.warmup_excluded) == (13, 10, 3, 1)
    assert s.errors_by_kind == {"connect": 1, "http": 1, "timeout": 1}
    assert s.error_examples["timeout"] == "no answer"
    assert s.latency_ms.count == 10 and s.latency_ms.max_ms == pytest.approx(10.0)
    assert s.latency_ms.p50_ms == pytest.approx(5.5)
    assert "3 failed" in s.latency_basis
    assert s.achieved_rate_rps == pytest.approx(6.5) and s.achieved_fraction == pytest.approx(1.0)
    assert not s.client_behind and any("3 of 13 requests failed" in w for w in s.warnings)
    json.dumps(s.to_dict())  # the CLI prints it as JSON


def test_summary_warns_when_the_client_falls_behind_its_schedule():
    late = [rec(i, i * 0.01, i * 0.01 + (0.05 if i % 10 == 0 else 0.0), i * 0.01 + 0.06) for i in range(100)]
    s = summarize(late, duration_s=1.0, target_rate_rps=100)
    assert s.client_behind and s.schedule_lag_ms.p99_ms == pytest.approx(50.0)  # the 10 late ones, by hand
    assert "fell behind" in s.warnings[0]
    slow = summarize(late[:50], duration_s=1.0, target_rate_rps=100)
    assert any("50.0%" in w for w in slow.warnings)


def test_interrupted_requests_are_counted_apart():
    records = [rec(0, 0, 0, 0.01), rec(1, 0.1, 0.1, 0.3, error="stopped", kind="interrupted")]
    s = summarize(records, duration_s=0.3, target_rate_rps=None, interrupted=True)
    assert (s.requests_ok, s.requests_failed, s.requests_interrupted) == (1, 0, 1)
    assert s.errors_by_kind == {} and s.interrupted


def test_timeline_bins_target_sent_and_latency():
    records = [rec(i, i * 0.25, i * 0.25, i * 0.25 + 0.01) for i in range(8)]  # 4/s for 2 s
    bins = timeline(records, bin_s=1.0, schedule_offsets_s=[i * 0.25 for i in range(12)], until_s=3.0)
    assert [b.target_rps for b in bins] == [4, 4, 4]
    assert [b.sent_rps for b in bins] == [4, 4, 0]
    assert bins[0].latency_p50_ms == pytest.approx(10.0) and bins[2].latency_p50_ms is None
