"""Deploy and job specs: validation messages, and the dry-run gcloud commands checked field by field
against Google's GPU documentation and against the run_v2 message the same spec applies."""

from __future__ import annotations

import pytest

from lib.cloudrun import (
    BucketVolume,
    JobSpec,
    ProbeSpec,
    ServiceSpec,
    SpecError,
    build_spec,
    job_message,
    memory_gib,
    render_deploy,
    render_job_create,
    render_job_execute,
    service_message,
    split_list,
)

IMAGE = "europe-west4-docker.pkg.dev/my-project/serving/vllm-gemma:1"
VLLM_ARGS = ["--model=/models/gemma-3-4b-it", "--served-model-name=google/gemma-3-4b-it", "--max-num-seqs=8",
             "--enable-lora", "--max-loras=4", "--lora-modules", "pets-a=/models/adapters/a",
             "pets-b=/models/adapters/b"]


def flags(argv: list[str]) -> dict[str, str | bool]:
    """`["--cpu=8", "--no-cpu-throttling"]` -> {"cpu": "8", "no-cpu-throttling": True}; repeated flags joined by |."""
    out: dict[str, str | bool] = {}
    for item in argv:
        if not item.startswith("--"):
            continue
        key, sep, value = item[2:].partition("=")
        if not sep:
            out[key] = True
        else:
            out[key] = f"{out[key]}|{value}" if key in out else value
    return out


def l4_service(**overrides: object) -> ServiceSpec:
    fields = {"name": "gemma-3-4b", "image": IMAGE, "project": "my-project", "region": "europe-west4",
              "gpu_type": "nvidia-l4", "cpu": 8, "memory": "32Gi", "args": VLLM_ARGS,
              "volumes": [BucketVolume(name="models", bucket="my-project-models", mount_path="/models")],
              "secrets": {"HF_TOKEN": "hf-token:latest"}}
    fields.update(overrides)
    return build_spec(ServiceSpec, **fields)


def test_gpu_service_dry_run_has_every_flag_google_asks_for() -> None:
    argv = render_deploy(l4_service())
    assert argv[:4] == ["gcloud", "run", "deploy", "gemma-3-4b"]
    f = flags(argv)
    assert f["image"] == IMAGE
    assert f["project"] == "my-project" and f["region"] == "europe-west4"
    # "GPU support for services": one GPU, a GPU type, CPU always allocated, >= 4 CPU and 16 GiB for L4
    assert f["gpu"] == "1" and f["gpu-type"] == "nvidia-l4"
    assert f["no-cpu-throttling"] is True and "cpu-throttling" not in f
    assert f["cpu"] == "8" and f["memory"] == "32Gi"
    assert f["no-gpu-zonal-redundancy"] is True
    assert f["concurrency"] == "8"  # = vLLM --max-num-seqs
    assert f["min-instances"] == "0" and f["max-instances"] == "1"
    assert f["timeout"] == "600" and f["port"] == "8080"
    assert f["startup-probe"] == ("httpGet.path=/health,httpGet.port=8080,initialDelaySeconds=0,periodSeconds=10,"
                                  "timeoutSeconds=5,failureThreshold=30")
    assert split_list(str(f["args"])) == VLLM_ARGS
    assert f["set-secrets"] == "HF_TOKEN=hf-token:latest"
    assert f["add-volume"] == "name=models,type=cloud-storage,bucket=my-project-models,readonly=true"
    assert f["add-volume-mount"] == "volume=models,mount-path=/models"
    assert f["no-allow-unauthenticated"] is True


def test_rtx_pro_6000_defaults_to_its_minimums_and_a_longer_probe() -> None:
    spec = build_spec(ServiceSpec, name="gemma-3-27b", image=IMAGE, gpu_type="nvidia-rtx-pro-6000",
                      region="us-central1")
    f = flags(render_deploy(spec))
    assert (f["cpu"], f["memory"], f["gpu-type"]) == ("20", "80Gi", "nvidia-rtx-pro-6000")
    assert "failureThreshold=90" in str(f["startup-probe"])  # 900 s for a 27B model's weights


def test_cpu_service_is_throttled_and_has_no_gpu_flags() -> None:
    spec = build_spec(ServiceSpec, name="pets-local", image=IMAGE, region="europe-west1", cpu=2, memory="2Gi",
                      allow_unauthenticated=True, concurrency=20)
    f = flags(render_deploy(spec))
    assert not {"gpu", "gpu-type", "no-gpu-zonal-redundancy", "no-cpu-throttling"} & set(f)
    assert f["cpu-throttling"] is True and f["allow-unauthenticated"] is True and f["concurrency"] == "20"


def test_dry_run_and_api_message_agree_field_by_field() -> None:
    spec = l4_service(min_instances=1, max_instances=5, timeout_s=1200, labels={"app": "pets"})
    f = flags(render_deploy(spec))
    message = service_message(spec)
    t, c = message.template, message.template.containers[0]
    assert dict(c.resources.limits) == {"cpu": f["cpu"], "memory": f["memory"], "nvidia.com/gpu": f["gpu"]}
    assert t.node_selector.accelerator == f["gpu-type"]
    assert t.gpu_zonal_redundancy_disabled is True and c.resources.cpu_idle is False
    assert str(t.max_instance_request_concurrency) == f["concurrency"]
    assert (str(t.scaling.min_instance_count), str(t.scaling.max_instance_count)) == (f["min-instances"],
                                                                                      f["max-instances"])
    assert str(int(t.timeout.total_seconds())) == f["timeout"]
    assert list(c.args) == split_list(str(f["args"]))
    assert c.startup_probe.failure_threshold == 30 and c.startup_probe.http_get.path == "/health"
    assert t.volumes[0].gcs.bucket == "my-project-models" and c.volume_mounts[0].mount_path == "/models"
    assert c.env[0].value_source.secret_key_ref.secret == "hf-token" and dict(message.labels) == {"app": "pets"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gpu_type": "nvidia-h100"}, "unknown GPU type 'nvidia-h100'; use one of nvidia-l4, nvidia-rtx-pro-6000"),
        ({"region": "us-west1"}, "nvidia-l4 GPUs are not offered in us-west1; use --region with one of"),
        ({"region": "Europe West"}, "is not a Google Cloud region name"),
        ({"cpu": 2}, "nvidia-l4 needs at least 4 CPU; got --cpu 2. Use --cpu 4 or more."),
        ({"memory": "8Gi"}, "nvidia-l4 needs at least 16Gi of memory; got --memory 8Gi. Use --memory 16Gi"),
        ({"gpu_type": "nvidia-rtx-pro-6000", "region": "us-central1", "cpu": 8, "memory": "32Gi"},
         "nvidia-rtx-pro-6000 needs at least 20 CPU"),
        ({"gpu_count": 2}, "exactly one GPU per instance; got --gpu 2. Use --gpu 1."),
        ({"cpu_throttling": True}, "a GPU service needs CPU always allocated; drop --cpu-throttling"),
        ({"concurrency": 32}, "--concurrency 32 is above vLLM's --max-num-seqs 8"),
        ({"timeout_s": 7200}, "--timeout 7200 is above Cloud Run's 3600 s request limit"),
        ({"startup_probe": ProbeSpec(period_s=10, failure_threshold=6)},
         "the startup probe gives the container 60 s but loading the model is expected to take 300 s"),
        ({"startup_probe": ProbeSpec(period_s=240, failure_threshold=10)},
         "failureThreshold x periodSeconds is 2400 s; Cloud Run allows at most 1800 s"),
        ({"min_instances": 3, "max_instances": 2}, "--min-instances 3 is above --max-instances 2"),
        ({"memory": "lots"}, "memory 'lots' is not understood; write it like 16Gi"),
        ({"name": "Gemma_3"}, "use lowercase letters, digits and hyphens"),
        ({"secrets": {"HF_TOKEN": "hf-token"}}, "must look like SECRET_NAME:latest"),
    ],
)
def test_bad_service_specs_say_what_to_change(overrides: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        l4_service(**overrides)
    assert message in str(info.value)


def test_region_check_can_be_skipped_for_regions_google_adds_later() -> None:
    assert l4_service(region="us-west1", skip_region_check=True).region == "us-west1"


def test_memory_units() -> None:
    assert [memory_gib(m) for m in ("16Gi", "512Mi", "80Gi")] == [16, 0.5, 80]


def test_gpu_job_create_and_execute_commands() -> None:
    spec = build_spec(JobSpec, name="pets-finetune", image=IMAGE, project="my-project", region="europe-west4",
                      gpu_type="nvidia-l4", cpu=8, memory="32Gi", tasks=1, max_retries=2, task_timeout_s=3600,
                      command=["python", "-m", "lib"], args=["finetune", "gemma", "--epochs", "1"],
                      secrets={"HF_TOKEN": "hf-token:latest"},
                      service_account="trainer@my-project.iam.gserviceaccount.com",
                      volumes=[BucketVolume(name="out", bucket="my-project-tuning", mount_path="/out",
                                            read_only=False)])
    argv = render_job_create(spec)
    assert argv[:5] == ["gcloud", "run", "jobs", "create", "pets-finetune"]
    f = flags(argv)
    assert (f["gpu"], f["gpu-type"], f["cpu"], f["memory"]) == ("1", "nvidia-l4", "8", "32Gi")
    assert f["no-gpu-zonal-redundancy"] is True and "no-cpu-throttling" not in f
    assert (f["tasks"], f["max-retries"], f["task-timeout"]) == ("1", "2", "3600s")
    assert f["command"] == "python,-m,lib" and f["args"] == "finetune,gemma,--epochs,1"
    assert f["set-secrets"] == "HF_TOKEN=hf-token:latest"
    assert f["add-volume"] == "name=out,type=cloud-storage,bucket=my-project-tuning"
    assert f["service-account"] == "trainer@my-project.iam.gserviceaccount.com"
    assert render_job_execute(spec) == ["gcloud", "run", "jobs", "execute", "pets-finetune",
                                        "--project=my-project", "--region=europe-west4", "--wait"]
    task = job_message(spec).template.template
    assert task.max_retries == 2 and int(task.timeout.total_seconds()) == 3600
    assert task.node_selector.accelerator == "nvidia-l4" and task.volumes[0].gcs.read_only is False


def test_load_job_with_many_tasks_and_overrides() -> None:
    spec = build_spec(JobSpec, name="pets-load", image=IMAGE, region="europe-west4", tasks=20, parallelism=10,
                      task_timeout_s=1800, env={"TARGETS": "a,b"})
    f = flags(render_job_create(spec))
    assert "gpu" not in f and (f["tasks"], f["parallelism"]) == ("20", "10")
    assert f["set-env-vars"] == "^|^TARGETS=a,b"  # gcloud's alternate delimiter keeps the comma
    assert flags(render_job_execute(spec, tasks=40, env={"RATE": "50"}, wait=False)) == {
        "region": "europe-west4", "tasks": "40", "update-env-vars": "RATE=50"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gpu_type": "nvidia-l4", "task_timeout_s": 7200}, "above the 3600 s limit for GPU job tasks"),
        ({"tasks": 2, "parallelism": 4}, "--parallelism 4 is above --tasks 2"),
        ({"gpu_type": "nvidia-l4", "region": "europe-north1"}, "not offered in europe-north1"),
    ],
)
def test_bad_job_specs(overrides: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        build_spec(JobSpec, **{"name": "j", "image": IMAGE, "region": "europe-west4", **overrides})
    assert message in str(info.value)
