"""`python -m lib loadgen ...` as a user runs it: JSON last line, Ctrl-C keeps records, merge, job dry run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.loadgen import read_run

pytestmark = pytest.mark.slow  # runs the CLI in a subprocess against a server process

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lib", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_a_run_prints_a_table_then_one_json_object(noop, photos, tmp_path):
    out = tmp_path / "run.jsonl"
    done = cli(
        "loadgen",
        "--url",
        f"{noop}/v1",
        "--model",
        "noop",
        "--images",
        str(photos),
        "--out",
        str(out),
        "--mode",
        "poisson",
        "--rate",
        "40",
        "--duration",
        "1",
        "--warmup",
        "0.25",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert "latency ms: p50" in done.stdout and "schedule lag ms" in done.stdout
    assert summary["requests_failed"] == 0 and summary["requests_ok"] == summary["requests_sent"] > 20
    assert summary["records_path"] == str(out)
    run = read_run(out)
    assert {r.image for r in run.records} <= {"Abyssinian_0.jpg", "Abyssinian_1.jpg", "Abyssinian_2.jpg"}
    assert len(run.records) == summary["requests_sent"] + summary["warmup_excluded"]


def test_ctrl_c_half_way_keeps_and_summarises_the_records(noop, tmp_path):
    out = tmp_path / "run.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lib",
            "loadgen",
            "--url",
            f"{noop}/slow/300/v1",
            "--model",
            "noop",
            "--text",
            "--out",
            str(out),
            "--rate",
            "20",
            "--duration",
            "30",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # half-way: once some answers are on disk (flushed as it goes)
        if out.exists() and len(out.read_text().splitlines()) > 6:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] and summary["requests_ok"] >= 5 and summary["requests_interrupted"] >= 1
    assert len(read_run(out).records) == summary["requests_sent"]


def test_tasks_of_a_job_split_the_rate_and_merge_into_one_summary(noop, tmp_path):
    for index in range(2):
        done = cli(
            "loadgen",
            "--url",
            f"{noop}/v1",
            "--model",
            "noop",
            "--text",
            "--out",
            str(tmp_path / "r.jsonl"),
            "--mode",
            "constant",
            "--rate",
            "40",
            "--duration",
            "1",
            "--task-count",
            "2",
            "--task-index",
            str(index),
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["requests_sent"] == 20
    merged = cli("loadgen", "merge", str(tmp_path / "r-task*.jsonl"))
    assert merged.returncode == 0, merged.stderr
    summary = json.loads(merged.stdout.splitlines()[-1])
    assert summary["requests_sent"] == 40 and summary["task_count"] == 2 and summary["target_rate_rps"] == 40


def test_the_job_renders_as_gcloud_commands():
    done = cli(
        "loadgen",
        "job",
        "--dry-run",
        "--image",
        "europe-docker.pkg.dev/p/r/pets:1",
        "--tasks",
        "3",
        "--url",
        "https://pets.example.run.app/v1",
        "--model",
        "pets-tuned",
        "--rate",
        "300",
        "--duration",
        "120",
        "--bucket",
        "my-results",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    create = result["create"]
    assert create[:5] == ["gcloud", "run", "jobs", "create", "pets-loadgen"]
    assert "--tasks=3" in create and any("--rate,300" in a for a in create)
    assert "gcloud run jobs execute" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "0"], "rate must be > 0"),
        (["--rate", "5", "--duration", "-1"], "duration must be a positive"),
        (["--rate", "5", "--ramp", "linear:1:2:3"], "either --rate or --ramp"),
        (["--ramp", "linear:1:2"], "bad ramp"),
    ],
)
def test_bad_input_gets_a_one_line_message(noop, tmp_path, args, message):
    done = cli(
        "loadgen",
        "--url",
        f"{noop}/v1",
        "--model",
        "noop",
        "--text",
        "--out",
        str(tmp_path / "x.jsonl"),
        *args,
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_an_empty_images_folder_gets_a_one_line_message(noop, tmp_path):
    (tmp_path / "empty").mkdir()
    done = cli(
        "loadgen",
        "--url",
        f"{noop}/v1",
        "--model",
        "noop",
        "--images",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "x.jsonl"),
        "--rate",
        "5",
    )
    assert done.returncode == 2 and "no .jpg/.jpeg/.png/.webp photos; run `make data`" in done.stderr


def test_cloud_run_task_variables_pick_this_tasks_share(noop, tmp_path):
    import os

    env = {**os.environ, "CLOUD_RUN_TASK_INDEX": "1", "CLOUD_RUN_TASK_COUNT": "2"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lib",
            "loadgen",
            "--url",
            f"{noop}/v1",
            "--model",
            "noop",
            "--text",
            "--out",
            str(tmp_path / "r.jsonl"),
            "--mode",
            "constant",
            "--rate",
            "20",
            "--duration",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["task_index"] == 1 and summary["requests_sent"] == 10
    assert read_run(tmp_path / "r-task1.jsonl").header.task_count == 2
