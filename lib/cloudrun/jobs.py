"""Cloud Run Jobs: submit a job spec (dry run = the exact gcloud commands) and follow its execution.

`submit_job` is the generic machinery (fine-tuning, multi-task load jobs); `add_submit_command`
registers `python -m lib finetune submit`, a Gemma LoRA training job on a GPU.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from lib.cloudrun import admin
from lib.cloudrun.gcloud import format_command, render_job_create, render_job_execute
from lib.cloudrun.specs import BucketVolume, JobSpec, SpecError, build_spec
from lib.errors import UserError
from lib.settings import load_settings

__all__ = ["submit_job", "add_submit_command", "parse_pairs", "parse_volumes", "finetune_spec"]


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """`["A=1", "B=2"]` -> `{"A": "1", "B": "2"}`, with a message naming the flag on a malformed item."""
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} {item!r}: write it as NAME=VALUE")
        pairs[key] = value
    return pairs


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
        try:
            volumes.append(BucketVolume(name=name, bucket=bucket, mount_path=path, read_only=read_only))
        except ValueError as exc:
            raise SpecError(f"--volume {item!r}: {exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
    return volumes


def submit_job(
    spec: JobSpec, *, dry_run: bool, follow: bool = True, tasks: int | None = None, poll_s: float = 10.0,
    out: Callable[[str], None] = print, clients: admin.Clients | None = None,
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
    clients = clients or admin.make_clients()
    job_name = admin.apply_job(spec, clients=clients)
    out(f"job {job_name} ready")
    execution = admin.run_job(job_name, clients=clients, tasks=tasks)
    out(f"execution {execution.split('/')[-1]} started")
    if not follow:
        return {"dry_run": False, "job": spec.name, "execution": execution.split("/")[-1], "state": "pending"}

    def show(info: admin.ExecutionInfo) -> None:
        out(f"{info.name}: {info.state} (running {info.tasks_running}, succeeded {info.tasks_succeeded}, "
            f"failed {info.tasks_failed})")

    final = admin.follow_execution(execution, clients=clients, poll_s=poll_s, on_change=show)
    return {"dry_run": False, "job": spec.name, "execution": final.name, "state": final.state,
            "duration_s": final.duration_s, "tasks_succeeded": final.tasks_succeeded,
            "tasks_failed": final.tasks_failed, "log_uri": final.log_uri}


def finetune_spec(args: argparse.Namespace) -> JobSpec:
    """The Gemma LoRA training job from `finetune submit` arguments."""
    settings = load_settings()
    trainer_args = [a for a in (args.trainer_args or []) if a != "--"]
    secrets = parse_pairs(args.secret, "--secret") if args.secret else {"HF_TOKEN": "hf-token:latest"}
    return build_spec(  # type: ignore[return-value]
        JobSpec, name=args.name, image=args.image, project=args.project or settings.google_cloud_project,
        region=args.region or settings.region, gpu_type=args.gpu_type, cpu=args.cpu, memory=args.memory,
        tasks=args.tasks, parallelism=args.parallelism, max_retries=args.max_retries,
        task_timeout_s=args.task_timeout, command=["python", "-m", "lib"],
        args=["finetune", "gemma", *trainer_args], env=parse_pairs(args.env, "--env"), secrets=secrets,
        volumes=parse_volumes(args.volume), service_account=args.service_account,
        labels={"app": "pets", "role": "finetune"}, skip_region_check=args.skip_region_check,
    )


def add_job_arguments(parser: argparse.ArgumentParser, *, name: str, gpu_default: str) -> None:
    """Flags shared by job-submitting commands (fine-tuning here, load jobs elsewhere)."""
    parser.add_argument("--name", default=name, help=f"job name (default {name})")
    parser.add_argument("--image", required=True, help="container image with this repository (see serving/)")
    parser.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--region", help="region (default CLOUD_RUN_REGION)")
    parser.add_argument("--gpu-type", default=gpu_default, help="nvidia-l4, nvidia-rtx-pro-6000 or none")
    parser.add_argument("--cpu", type=float, help="CPUs per task (default: the GPU type's minimum)")
    parser.add_argument("--memory", help="memory per task, like 32Gi (default: the GPU type's minimum)")
    parser.add_argument("--tasks", type=int, default=1, help="number of tasks (default 1)")
    parser.add_argument("--parallelism", type=int, help="tasks at once (default: all)")
    parser.add_argument("--max-retries", type=int, default=3, help="retries per task (default 3)")
    parser.add_argument("--task-timeout", type=int, default=3600, help="seconds per task (GPU: at most 3600)")
    parser.add_argument("--env", action="append", metavar="NAME=VALUE", help="environment variable (repeatable)")
    parser.add_argument("--secret", action="append", metavar="NAME=SECRET:VERSION",
                        help="env var from Secret Manager (repeatable; default HF_TOKEN=hf-token:latest)")
    parser.add_argument("--volume", action="append", metavar="NAME=BUCKET:/path",
                        help="mount a Cloud Storage bucket (repeatable; append :rw to write)")
    parser.add_argument("--service-account", help="service account email the job runs as")
    parser.add_argument("--skip-region-check", action="store_true", help="allow a region not in our GPU table")
    parser.add_argument("--dry-run", action="store_true", help="print the gcloud commands, send nothing")
    parser.add_argument("--no-follow", action="store_true", help="start the execution and return")
    parser.add_argument("--poll-s", type=float, default=10.0, help="seconds between status checks")


def _submit(args: argparse.Namespace) -> int:
    spec = finetune_spec(args)
    result = submit_job(spec, dry_run=args.dry_run, follow=not args.no_follow, poll_s=args.poll_s)
    print(json.dumps(result))
    return 0 if result.get("state") in (None, "pending", "running", "succeeded") else 1


def add_submit_command(commands: argparse._SubParsersAction) -> None:
    """Register `finetune submit`: the Gemma trainer as a Cloud Run Job with a GPU."""
    parser = commands.add_parser(
        "submit", help="run the Gemma LoRA trainer as a Cloud Run Job (GPU)",
        description="Create and execute a Cloud Run Job running `python -m lib finetune gemma ARGS`. "
                    "Arguments after -- go to the trainer.")
    add_job_arguments(parser, name="pets-finetune", gpu_default="nvidia-l4")
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER, help="-- then arguments for finetune gemma")
    parser.set_defaults(func=_submit)
