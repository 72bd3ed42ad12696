"""Typed options for Cloud Run jobs: `finetune submit` flags, the Tuning page and `finetune_spec` agree,
and a bad value from the command line is one line that names the flag (never a pydantic traceback)."""

from __future__ import annotations

import json

import pytest

from lib.cli import main
from lib.cloudrun import FinetuneJobOptions, SpecError, bucket_volume, finetune_spec, submit_job
from lib.errors import UserError
from lib.finetune import submit_gemma_job

IMAGE = "europe-west4-docker.pkg.dev/my-project/serving/pets-train:1"
TRAINER = ("--model-id", "google/gemma-3-4b-it", "--out", "/tuning/r1", "--resume")


@pytest.fixture(autouse=True)
def no_cloud_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION", "CLOUD_RUN_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def dry_run_commands(capsys: pytest.CaptureFixture, argv: list[str]) -> list[list[str]]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["commands"]


def test_the_flags_and_the_typed_options_make_the_same_job(capsys: pytest.CaptureFixture) -> None:
    from_flags = dry_run_commands(capsys, [
        "finetune", "submit", "--image", IMAGE, "--project", "my-project", "--region", "us-central1",
        "--gpu-type", "nvidia-rtx-pro-6000", "--cpu", "20", "--memory", "80Gi", "--max-retries", "5",
        "--task-timeout", "1800", "--env", "A=1", "--secret", "HF_TOKEN=hf:3",
        "--volume", "tuning=my-tuning:/tuning:rw", "--service-account", "t@my-project.iam.gserviceaccount.com",
        "--dry-run", "--", *TRAINER])
    options = FinetuneJobOptions(
        image=IMAGE, trainer_args=TRAINER, project="my-project", region="us-central1", gpu_type="nvidia-rtx-pro-6000",
        cpu=20, memory="80Gi", max_retries=5, task_timeout_s=1800, env={"A": "1"}, secrets={"HF_TOKEN": "hf:3"},
        volumes=(bucket_volume("tuning", "my-tuning", "/tuning", read_only=False),),
        service_account="t@my-project.iam.gserviceaccount.com")
    from_code = submit_job(finetune_spec(options), dry_run=True, out=lambda _line: None)["commands"]
    assert from_flags == from_code
    create = from_code[0]
    assert "--args=finetune,gemma,--model-id,google/gemma-3-4b-it,--out,/tuning/r1,--resume" in create
    assert "--task-timeout=1800s" in create and "--max-retries=5" in create


def test_the_trainer_token_comes_from_secret_manager_unless_told_otherwise() -> None:
    assert finetune_spec(FinetuneJobOptions(image=IMAGE)).secrets == {"HF_TOKEN": "hf-token:latest"}
    assert finetune_spec(FinetuneJobOptions(image=IMAGE, secrets={})).secrets == {}


def test_the_tuning_page_launch_builds_the_job_without_a_command_line() -> None:
    lines: list[str] = []
    result = submit_gemma_job(image=IMAGE, trainer_args=list(TRAINER), gpu_type="nvidia-l4", dry_run=True,
                              out=lines.append)
    assert result["commands"][0][:5] == ["gcloud", "run", "jobs", "create", "pets-finetune"]
    assert lines[0].startswith("gcloud run jobs create pets-finetune") and "/tuning/r1" in lines[0]


@pytest.mark.parametrize("overrides, message", [
    ({"gpu_type": "nvidia-h100"}, "unknown GPU type 'nvidia-h100'"),
    ({"task_timeout_s": 7200}, "--task-timeout 7200 s is above the 3600 s limit for GPU job tasks"),
])
def test_the_tuning_page_gets_a_user_error_for_a_bad_launch(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        submit_gemma_job(image=IMAGE, trainer_args=list(TRAINER), dry_run=True, **overrides)


@pytest.mark.parametrize("argv, message", [
    (["finetune", "submit", "--image", IMAGE, "--volume", "data=b:/data"],
     "--volume 'data=b:/data': bucket 'b' is not a Cloud Storage bucket name"),
    (["finetune", "submit", "--image", IMAGE, "--volume", "Data=pets-bucket:/data"],
     "volume name 'Data': use lowercase letters"),
    (["finetune", "submit", "--image", IMAGE, "--volume", "data=pets-bucket:data"],
     "mount path 'data' must be absolute"),
    (["finetune", "submit", "--image", IMAGE, "--volume", "data"], "write it as NAME=BUCKET:/mount/path"),
    (["deploy", "service", "gemma", "--image", IMAGE, "--volume", "models=b:/models"],
     "--volume 'models=b:/models': bucket 'b' is not"),
    (["deploy", "service", "gemma", "--image", IMAGE, "--startup-probe-period-s", "500"],
     "--startup-probe-period-s must be 1-240 seconds, got 500"),
    (["deploy", "service", "gemma", "--image", IMAGE, "--startup-probe-failures", "-1"],
     "--startup-probe-failures must be at least 1, got -1"),
])
def test_bad_values_from_the_command_line_are_one_line(argv: list[str], message: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert main([*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "validation error" not in err


def test_a_bad_bucket_names_the_flag_it_came_from() -> None:
    with pytest.raises(SpecError, match=r"^--bucket: bucket 'B' is not a Cloud Storage bucket name"):
        bucket_volume("results", "B", "/results", flag="--bucket")
