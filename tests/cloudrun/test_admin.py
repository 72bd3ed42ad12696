"""The real `run_v2` clients against a local gRPC Cloud Run Admin API: deploy, list in pages, jobs,
executions, and the errors a user can fix (403, unknown project, missing credentials)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib import cloudrun
from lib.cli import main
from lib.cloudrun import JobSpec, ServiceSpec, build_spec, submit_job
from lib.errors import UserError
from lib.settings import load_settings
from testkit.cloudrun_fakes import (
    FORBIDDEN_PROJECT,
    MISSING_PROJECT,
    PROJECT,
    REGIONS,
    FakeCloudRun,
    ModelServers,
    add_fleet,
)

IMAGE = "europe-west4-docker.pkg.dev/test-project/serving/vllm-gemma:1"


def test_deploy_creates_then_updates_a_gpu_service(clients: cloudrun.Clients, fake_run: FakeCloudRun) -> None:
    spec = build_spec(ServiceSpec, name="gemma-3-4b", image=IMAGE, project=PROJECT, region="europe-west4",
                      gpu_type="nvidia-l4", args=["--max-num-seqs=4"])
    info = cloudrun.apply_service(spec, clients=clients)
    assert (info.name, info.region, info.gpu_type, info.gpu_count, info.concurrency) == (
        "gemma-3-4b", "europe-west4", "nvidia-l4", 1, 4)
    assert info.ready and info.url.startswith("https://gemma-3-4b-") and info.latest_ready_revision
    stored = fake_run.services[f"projects/{PROJECT}/locations/europe-west4/services/gemma-3-4b"]
    assert dict(stored.template.containers[0].resources.limits)["nvidia.com/gpu"] == "1"

    again = cloudrun.apply_service(spec.model_copy(update={"max_instances": 4}), clients=clients)
    assert again.max_instances == 4
    assert [c for c, _ in fake_run.calls if c in ("CreateService", "UpdateService")] == ["CreateService",
                                                                                      "UpdateService"]
    assert not fake_run.policies  # private unless asked


def test_public_service_gets_an_allusers_invoker_binding(clients: cloudrun.Clients, fake_run: FakeCloudRun) -> None:
    spec = build_spec(ServiceSpec, name="pets-local", image=IMAGE, project=PROJECT, allow_unauthenticated=True)
    info = cloudrun.apply_service(spec, clients=clients)
    policy = fake_run.policies[f"projects/{PROJECT}/locations/europe-west4/services/{info.name}"]
    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/run.invoker", ["allUsers"])]


def test_lists_150_services_across_regions_in_pages(
    clients: cloudrun.Clients, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 150)
    found = cloudrun.list_services(PROJECT, REGIONS, clients=clients, page_size=20)
    assert len(found) == 150 and {s.region for s in found} == set(REGIONS)
    list_calls = [r for c, r in fake_run.calls if c == "ListServices"]
    assert len(list_calls) == 3 * 3  # 50 per region in pages of 20
    assert {r.page_token for r in list_calls} == {"", "20", "40"}
    gpu = next(s for s in found if s.name == "svc-001")
    cpu = next(s for s in found if s.name == "svc-000")
    assert (gpu.gpu_type, gpu.gpu_count, gpu.min_instances, gpu.max_instances, gpu.concurrency) == (
        "nvidia-l4", 1, 1, 4, 8)
    assert (cpu.gpu_type, cpu.gpu_count, cpu.memory) == (None, 0, "512Mi")
    assert gpu.latest_ready_revision == "svc-001-00001-abc" and gpu.url == model_servers.url("svc-001")
    labelled = cloudrun.list_services(PROJECT, REGIONS, clients=clients, label="app=pets")
    assert len(labelled) == 120


@pytest.mark.parametrize(
    "project, message",
    [
        (FORBIDDEN_PROJECT, "permission denied"),
        (MISSING_PROJECT, "Check that the project exists"),
    ],
)
def test_listing_errors_say_what_to_change(clients: cloudrun.Clients, project: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        cloudrun.list_services(project, ["europe-west4"], clients=clients)
    assert message in str(info.value) and project in str(info.value)


def test_missing_credentials_is_a_clear_message(cloud_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.delenv("CLOUD_RUN_API_ENDPOINT")  # the production path: Google's endpoint, ambient credentials
    with pytest.raises(UserError, match="no Google credentials found. Run `gcloud auth application-default login`"):
        cloudrun.make_clients(load_settings())


def test_non_loopback_test_endpoint_is_refused(cloud_env: Path) -> None:
    with pytest.raises(UserError, match="only a loopback host:port"):
        cloudrun.make_clients(load_settings({"CLOUD_RUN_API_ENDPOINT": "run.example.com:443"}))


def finetune_job() -> JobSpec:
    return build_spec(JobSpec, name="pets-finetune", image=IMAGE, project=PROJECT, region="europe-west4",
                      gpu_type="nvidia-l4", command=["python", "-m", "lib"], args=["finetune", "gemma"],
                      secrets={"HF_TOKEN": "hf-token:latest"})


def test_submit_creates_runs_and_follows_a_job(clients: cloudrun.Clients, fake_run: FakeCloudRun) -> None:
    lines: list[str] = []
    result = submit_job(finetune_job(), dry_run=False, clients=clients, poll_s=0.01, out=lines.append)
    assert result["state"] == "succeeded" and result["tasks_succeeded"] == 1
    assert lines[0].startswith(f"job projects/{PROJECT}/locations/europe-west4/jobs/pets-finetune")
    states = [line.split(": ")[1].split(" ")[0] for line in lines[2:]]
    assert states == ["pending", "running", "succeeded"]
    job = fake_run.jobs[f"projects/{PROJECT}/locations/europe-west4/jobs/pets-finetune"]
    assert job.template.template.node_selector.accelerator == "nvidia-l4"

    jobs = cloudrun.list_jobs(PROJECT, "europe-west4", client=clients.jobs)
    assert [(j.name, j.gpu_type, j.task_count, j.timeout_s, j.latest_execution) for j in jobs] == [
        ("pets-finetune", "nvidia-l4", 1, 3600, "pets-finetune-00001")]
    fake_run.fail_tasks = 1
    second = submit_job(finetune_job(), dry_run=False, clients=clients, poll_s=0.01, out=lines.append)
    assert second["state"] == "failed"
    executions = cloudrun.list_executions(PROJECT, "europe-west4", "pets-finetune", client=clients.executions)
    assert [(e.name, e.state) for e in executions] == [("pets-finetune-00002", "failed"),
                                                       ("pets-finetune-00001", "succeeded")]
    assert executions[1].duration_s is not None and executions[1].log_uri


def test_multi_task_job_overrides_task_count(clients: cloudrun.Clients, fake_run: FakeCloudRun) -> None:
    spec = build_spec(JobSpec, name="pets-load", image=IMAGE, project=PROJECT, region="europe-west4", tasks=4,
                      parallelism=4)
    result = submit_job(spec, dry_run=False, tasks=8, clients=clients, poll_s=0.01, out=lambda _: None)
    assert result["state"] == "succeeded" and result["tasks_succeeded"] == 8


def test_finetune_submit_command(cloud_env: Path, fake_run: FakeCloudRun, capsys: pytest.CaptureFixture) -> None:
    assert main(["finetune", "submit", "--image", IMAGE, "--poll-s", "0.01", "--", "--epochs", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["state"] == "succeeded"
    job = fake_run.jobs[f"projects/{PROJECT}/locations/europe-west4/jobs/pets-finetune"]
    container = job.template.template.containers[0]
    assert list(container.args) == ["finetune", "gemma", "--epochs", "1"]
    assert container.env[0].name == "HF_TOKEN" and container.env[0].value_source.secret_key_ref.secret == "hf-token"

    assert main(["jobs", "list"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["jobs"][0]["name"] == "pets-finetune"
    assert main(["executions", "list", "pets-finetune"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["executions"][0]["state"] == "succeeded"


def test_finetune_submit_dry_run_prints_both_commands(cloud_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["finetune", "submit", "--image", IMAGE, "--dry-run", "--secret", "HF_TOKEN=hf:3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    create, execute = result["commands"]
    assert create[:5] == ["gcloud", "run", "jobs", "create", "pets-finetune"]
    assert "--set-secrets=HF_TOKEN=hf:3" in create
    assert execute[:5] == ["gcloud", "run", "jobs", "execute", "pets-finetune"] and execute[-1] == "--wait"


def test_deploy_command_bad_input(cloud_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["deploy", "service", "g", "--image", IMAGE, "--gpu-type", "nvidia-a100", "--dry-run"]) == 2
    assert "unknown GPU type 'nvidia-a100'" in capsys.readouterr().err
    assert main(["deploy", "service", "g", "--image", IMAGE, "--gpu-type", "nvidia-l4", "--memory", "8Gi"]) == 2
    assert "Use --memory 16Gi or more" in capsys.readouterr().err
    assert main(["deploy", "service", "g", "--image", IMAGE, "--project", FORBIDDEN_PROJECT]) == 2
    assert "permission denied" in capsys.readouterr().err
