"""Cloud Run Jobs: submit a job spec (dry run = the exact gcloud commands) and follow its execution.

`submit_job` is the generic machinery (fine-tuning, multi-task load jobs); `finetune_spec` turns typed
`FinetuneJobOptions` into the Gemma LoRA training job (`python -m lib finetune submit`, the Tuning page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from lib.cloudrun.admin import Clients, ExecutionInfo, apply_job, follow_execution, make_clients, run_job
from lib.cloudrun.gcloud import format_command, render_job_create, render_job_execute
from lib.cloudrun.specs import BucketVolume, JobSpec, SpecError, build_spec
from lib.errors import UserError
from lib.settings import load_settings

__all__ = ["submit_job", "parse_pairs", "parse_volumes", "bucket_volume", "FinetuneJobOptions", "finetune_spec"]

# The trainer reads HF_TOKEN (Gemma's weights are gated); by default it comes from this Secret Manager secret.
DEFAULT_TRAINER_SECRETS = {"HF_TOKEN": "hf-token:latest"}


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """`["A=1", "B=2"]` -> `{"A": "1", "B": "2"}`, with a message naming the flag on a malformed item."""
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} {item!r}: write it as NAME=VALUE")
        pairs[key] = value
    return pairs


def bucket_volume(name: str, bucket: str, mount_path: str, *, read_only: bool = True, flag: str = "--volume",
                  ) -> BucketVolume:
    """A validated bucket volume; a bad name, bucket or path raises `SpecError` naming `flag`."""
    try:
        return BucketVolume(name=name, bucket=bucket, mount_path=mount_path, read_only=read_only)
    except ValidationError as exc:
        field_name = str(exc.errors()[0]["loc"][0])
        what = {
            "bucket": f"bucket {bucket!r} is not a Cloud Storage bucket name (3-222 characters: lowercase letters, "
                      f"digits, '-', '_' and '.', starting and ending with a letter or digit)",
            "name": f"volume name {name!r}: use lowercase letters, digits and hyphens, starting with a letter",
            "mount_path": f"mount path {mount_path!r} must be absolute (start with /) and hold no ',' or '='",
        }.get(field_name, f"{field_name}: {exc.errors()[0]['msg']}")
        raise SpecError(f"{flag}: {what}") from None


def parse_volumes(items: list[str] | None) -> list[BucketVolume]:
    """`["models=my-bucket:/models"]` -> bucket volumes (read-only unless the path ends in `:rw`)."""
    volumes = []
    for item in items or []:
        name, sep, rest = item.partition("=")
        bucket, sep2, path = rest.partition(":")
        read_only = True
        if path.endswith(":rw"):
            path, read_only = path[:-3], False
        if not (sep and sep2 and name and bucket and path):
            raise UserError(f"--volume {item!r}: write it as NAME=BUCKET:/mount/path (add :rw to allow writes)")
        volumes.append(bucket_volume(name, bucket, path, read_only=read_only, flag=f"--volume {item!r}"))
    return volumes


def submit_job(
    spec: JobSpec, *, dry_run: bool, follow: bool = True, tasks: int | None = None, poll_s: float = 10.0,
    out: Callable[[str], None] = print, clients: Clients | None = None,
) -> dict[str, Any]:
    """Dry run: print `gcloud run jobs create` + `execute`. Else create/update the job, run it, follow it."""
    spec.check()
    if dry_run:
        create, execute = render_job_create(spec), render_job_execute(spec, wait=follow, tasks=tasks)
        out(format_command(create))
        out(format_command(execute))
        return {"dry_run": True, "job": spec.name, "commands": [create, execute]}
    if not spec.project:
        raise UserError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    clients = clients or make_clients()
    job_name = apply_job(spec, clients=clients)
    out(f"job {job_name} ready")
    execution = run_job(job_name, clients=clients, tasks=tasks)
    out(f"execution {execution.split('/')[-1]} started")
    if not follow:
        return {"dry_run": False, "job": spec.name, "execution": execution.split("/")[-1], "state": "pending"}

    def show(info: ExecutionInfo) -> None:
        out(f"{info.name}: {info.state} (running {info.tasks_running}, succeeded {info.tasks_succeeded}, "
            f"failed {info.tasks_failed})")

    final = follow_execution(execution, clients=clients, poll_s=poll_s, on_change=show)
    return {"dry_run": False, "job": spec.name, "execution": final.name, "state": final.state,
            "duration_s": final.duration_s, "tasks_succeeded": final.tasks_succeeded,
            "tasks_failed": final.tasks_failed, "log_uri": final.log_uri}


@dataclass(frozen=True, kw_only=True)
class FinetuneJobOptions:
    """What `finetune submit` (or the Tuning page) asks for; `finetune_spec` validates it into a `JobSpec`.

    `trainer_args` go to `python -m lib finetune gemma`; None for project/region means the settings' defaults.
    """

    image: str
    trainer_args: tuple[str, ...] = ()
    name: str = "pets-finetune"
    project: str | None = None
    region: str | None = None
    gpu_type: str = "nvidia-l4"
    cpu: float | None = None
    memory: str | None = None
    tasks: int = 1
    parallelism: int | None = None
    max_retries: int = 3
    task_timeout_s: int = 3600
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] | None = None  # None: DEFAULT_TRAINER_SECRETS
    volumes: tuple[BucketVolume, ...] = ()
    service_account: str | None = None
    skip_region_check: bool = False


def finetune_spec(options: FinetuneJobOptions) -> JobSpec:
    """The Gemma LoRA training job: `python -m lib finetune gemma TRAINER_ARGS` on a GPU; bad values raise SpecError."""
    settings = load_settings()
    o = options
    return build_spec(
        JobSpec, name=o.name, image=o.image, project=o.project or settings.google_cloud_project,
        region=o.region or settings.region, gpu_type=o.gpu_type, cpu=o.cpu, memory=o.memory,
        tasks=o.tasks, parallelism=o.parallelism, max_retries=o.max_retries,
        task_timeout_s=o.task_timeout_s, command=["python", "-m", "lib"],
        args=["finetune", "gemma", *o.trainer_args], env=dict(o.env),
        secrets=dict(DEFAULT_TRAINER_SECRETS if o.secrets is None else o.secrets),
        volumes=list(o.volumes), service_account=o.service_account,
        labels={"app": "pets", "role": "finetune"}, skip_region_check=o.skip_region_check,
    )
