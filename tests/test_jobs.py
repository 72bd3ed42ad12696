"""The one background job: progress, a result, a failure never lost, a cooperative stop with hooks, a short log.

Every test waits on events or on the job itself, never on the clock."""

from __future__ import annotations

import threading

import pytest

from lib.errors import UserError
from lib.jobs import Job, JobControl


def test_a_job_reports_progress_and_its_result() -> None:
    reached_two, carry_on = threading.Event(), threading.Event()

    def work(control: JobControl) -> int:
        for i in range(1, 4):
            control.report({"done": i, "total": 3}, stage="counting")
            if i == 2:
                reached_two.set()
                carry_on.wait(10)
        return 42

    job = Job("count", work)
    assert job.snapshot().state == "pending" and not job.done
    job.start()
    assert reached_two.wait(10)
    middle = job.snapshot()
    assert middle.state == "running" and middle.running and middle.progress == {"done": 2, "total": 3}
    assert middle.stage == "counting" and middle.result is None and middle.started_unix_s is not None
    carry_on.set()
    final = job.wait(10)
    assert (final.state, final.result, final.error, final.progress) == ("succeeded", 42, None, {"done": 3, "total": 3})
    assert final.done and job.done and not job.running and final.elapsed_s >= 0


def test_stage_changes_go_to_the_log_once_each() -> None:
    def work(control: JobControl) -> None:
        for stage in ("extracting", "extracting", "training", "writing"):
            control.report(stage=stage)

    final = Job("stages", work).start().wait(10)
    stages = [line.split(" s  ", 1)[1] for line in final.log]  # "   0.0 s  started"
    assert stages == ["started", "extracting", "training", "writing", "succeeded"]
    assert final.progress is None  # a stage alone is not progress


def test_a_user_error_is_kept_as_its_message() -> None:
    def work(control: JobControl) -> None:
        raise UserError("no photos in /data: set PETS_DIR")

    final = Job("bad input", work).start().wait(10)
    assert (final.state, final.error, final.traceback) == ("failed", "no photos in /data: set PETS_DIR", None)
    assert final.log[-1].endswith("failed: no photos in /data: set PETS_DIR")


def test_any_other_exception_is_kept_with_its_type_and_traceback() -> None:
    def work(control: JobControl) -> None:
        {}["missing"]

    final = Job("bug", work).start().wait(10)
    assert final.state == "failed" and final.error == "KeyError: 'missing'"
    assert final.traceback is not None and "KeyError" in final.traceback and "in work" in final.traceback


def test_stop_sets_the_event_runs_the_hooks_and_keeps_the_partial_result() -> None:
    registered, hooked = threading.Event(), []

    def work(control: JobControl) -> str:
        control.on_stop(lambda: hooked.append("first"))
        control.on_stop(lambda: hooked.append("second"))
        registered.set()
        control.stop_event.wait(10)
        return "partial" if control.stopping else "complete"

    job = Job("long", work).start()
    assert registered.wait(10)
    job.stop()
    job.stop()  # a second stop changes nothing: each hook runs once
    final = job.wait(10)
    assert (final.state, final.result) == ("stopped", "partial") and hooked == ["first", "second"]
    assert any(line.endswith("stop asked") for line in final.log)


def test_a_hook_registered_after_the_stop_runs_at_once() -> None:
    stopped, hooked = threading.Event(), []

    def work(control: JobControl) -> None:
        stopped.wait(10)
        control.on_stop(lambda: hooked.append("late"))

    job = Job("late hook", work).start()
    job.stop()
    stopped.set()
    assert job.wait(10).state == "stopped" and hooked == ["late"]


def test_a_failing_stop_hook_is_logged_and_the_stop_still_counts() -> None:
    registered = threading.Event()

    def broken_hook() -> None:
        raise RuntimeError("loop closed")

    def work(control: JobControl) -> None:
        control.on_stop(broken_hook)
        registered.set()
        control.stop_event.wait(10)

    job = Job("hooks", work).start()
    assert registered.wait(10)
    job.stop()
    final = job.wait(10)
    assert final.state == "stopped"
    assert any("stop hook failed: RuntimeError: loop closed" in line for line in final.log)


def test_a_job_starts_once() -> None:
    job = Job("once", lambda control: None).start()
    job.wait(10)
    with pytest.raises(RuntimeError, match="already started"):
        job.start()


def test_waiting_for_a_job_that_was_never_started_returns_at_once() -> None:
    snapshot = Job("idle", lambda control: None).wait(10)
    assert snapshot.state == "pending" and not snapshot.done and snapshot.elapsed_s == 0.0
