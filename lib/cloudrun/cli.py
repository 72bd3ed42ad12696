"""`python -m lib deploy service | deploy dashboard | discover | coldstart | jobs list | executions list`.

Also the Cloud Run Job flags that job-submitting commands share (`add_job_arguments`, used by `finetune submit`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from lib.client import RetryPolicy
from lib.cloudrun.admin import apply_service, list_executions, list_jobs
from lib.cloudrun.coldstart import measure_cold_start_sync, save_cold_start
from lib.cloudrun.dashboard import dashboard_spec, render_dashboard_deploy, run_gcloud
from lib.cloudrun.discovery import discover_cached, discovery_regions, to_backends
from lib.cloudrun.gcloud import format_command, render_deploy, split_list
from lib.cloudrun.jobs import parse_pairs, parse_volumes
from lib.cloudrun.specs import ProbeSpec, ServiceSpec, SpecError, build_spec
from lib.data import default_data_dir, list_photos
from lib.errors import UserError
from lib.registry import Backend, resolve_backend
from lib.settings import load_settings

__all__ = ["add_commands", "add_job_arguments", "service_spec"]


def service_spec(args: argparse.Namespace) -> ServiceSpec:
    """The validated service spec from `deploy service` arguments."""
    settings = load_settings()
    probe = None
    if args.startup_probe_path is not None or args.startup_probe_period_s or args.startup_probe_failures:
        path, period, failures = args.startup_probe_path, args.startup_probe_period_s, args.startup_probe_failures
        # checked here so a bad value is a one-line message, not ProbeSpec's validation error
        if period is not None and not 1 <= period <= 240:
            raise SpecError(f"--startup-probe-period-s must be 1-240 seconds, got {period}")
        if failures is not None and failures < 1:
            raise SpecError(f"--startup-probe-failures must be at least 1, got {failures}")
        probe = ProbeSpec(path=None if path == "tcp" else (path or "/health"), period_s=period or 10,
                          timeout_s=min(5, period or 5), failure_threshold=failures or 60)
    container_args = split_list(args.args) if args.args else []
    return build_spec(
        ServiceSpec, name=args.name, image=args.image, project=args.project or settings.google_cloud_project,
        region=args.region or settings.region, gpu_type=args.gpu_type, gpu_count=args.gpu, cpu=args.cpu,
        memory=args.memory, min_instances=args.min_instances, max_instances=args.max_instances,
        concurrency=args.concurrency, timeout_s=args.timeout, port=args.port, args=container_args,
        env=parse_pairs(args.env, "--env"), secrets=parse_pairs(args.secret, "--secret"),
        volumes=parse_volumes(args.volume), service_account=args.service_account,
        labels=parse_pairs(args.label, "--label"), allow_unauthenticated=args.allow_unauthenticated,
        gpu_zonal_redundancy=args.gpu_zonal_redundancy, startup_probe=probe, model_load_s=args.model_load_s,
        skip_region_check=args.skip_region_check,
    )


def _deploy(args: argparse.Namespace) -> int:
    spec = service_spec(args)
    if args.dry_run:
        argv = render_deploy(spec)
        print(format_command(argv))
        print(json.dumps({"dry_run": True, "service": spec.name, "command": argv}))
        return 0
    info = apply_service(spec)
    print(f"service {info.name} ready at {info.url} (revision {info.latest_ready_revision})")
    print(json.dumps({"dry_run": False, **asdict(info)}))
    return 0


def _regions(args: argparse.Namespace) -> list[str]:
    return args.region or discovery_regions(load_settings())


def _project(args: argparse.Namespace) -> str:
    project = args.project or load_settings().google_cloud_project
    if not project:
        raise UserError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    return project


def _discover(args: argparse.Namespace) -> int:
    found = discover_cached(
        _project(args), _regions(args), label=args.label, max_age_s=args.max_age_s, refresh=args.refresh,
        probe=not args.no_probe, timeout_s=args.timeout_s)
    for svc in found:
        info = svc.info
        gpu = f"{info.gpu_type} x{info.gpu_count}" if info.gpu_type else "-"
        print(f"{info.region:<16} {info.name:<32} {gpu:<24} {info.min_instances}-{info.max_instances} "
              f"c={info.concurrency:<4} {svc.health:<18} {len(svc.models)} models  {svc.error or info.url}")
    backends = to_backends(found)
    health: dict[str, int] = {}
    for svc in found:
        health[svc.health] = health.get(svc.health, 0) + 1
    print(json.dumps({"services": len(found), "backends": len(backends), "health": health}))
    return 0


def _image_bytes(path: str | None) -> bytes:
    if path:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise UserError(f"--image {path}: {exc.strerror}") from None
    try:
        return list_photos(default_data_dir(load_settings().pets_dir), limit=1)[0].path.read_bytes()
    except UserError as exc:
        raise UserError(f"no photo to send: {exc}; or pass --image PATH") from None


def _coldstart(args: argparse.Namespace) -> int:
    target: Backend | str = args.target
    if not args.target.startswith(("http://", "https://")):
        target = resolve_backend(args.target)
    elif not args.model:
        raise UserError("a URL needs --model (the model name the server serves)")
    retry = RetryPolicy(deadline_s=args.deadline_s, max_attempts=10_000, backoff_initial_s=0.5, backoff_max_s=5.0)
    result = measure_cold_start_sync(target, args.model, _image_bytes(args.image), retry=retry)
    saved = None if args.no_save else save_cold_start(result)
    print(json.dumps({**asdict(result), "saved_to": saved}))
    return 0 if result.ok else 1


def _jobs_list(args: argparse.Namespace) -> int:
    region = args.region or load_settings().region
    rows = [asdict(j) for j in list_jobs(_project(args), region)]
    for row in rows:
        print(f"{row['name']:<32} {row['gpu_type'] or '-':<20} tasks={row['task_count']} "
              f"latest={row['latest_execution'] or '-'}")
    print(json.dumps({"jobs": rows}))
    return 0


def _executions_list(args: argparse.Namespace) -> int:
    region = args.region or load_settings().region
    rows = [asdict(e) for e in list_executions(_project(args), region, args.job)]
    for row in rows:
        print(f"{row['name']:<40} {row['state']:<10} ok={row['tasks_succeeded']} failed={row['tasks_failed']} "
              f"{row['duration_s'] or '-'} s")
    print(json.dumps({"executions": rows}))
    return 0


def _add_service_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("service", help="deploy a Cloud Run service (vLLM Gemma or the CPU server)",
                       description="Validate and deploy; --dry-run prints the exact gcloud command.")
    p.add_argument("name", help="service name")
    p.add_argument("--image", required=True, help="container image (see serving/README.md)")
    p.add_argument("--gpu-type", default="none", help="nvidia-l4, nvidia-rtx-pro-6000 or none (default)")
    p.add_argument("--gpu", type=int, default=1, help="GPUs per instance (Cloud Run allows exactly 1)")
    p.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    p.add_argument("--region", help="region (default CLOUD_RUN_REGION)")
    p.add_argument("--cpu", type=float, help="CPUs (default: the GPU type's minimum, else 1)")
    p.add_argument("--memory", help="memory like 32Gi (default: the GPU type's minimum, else 512Mi)")
    p.add_argument("--min-instances", type=int, default=0)
    p.add_argument("--max-instances", type=int, default=1)
    p.add_argument("--concurrency", type=int, help="requests per instance (default: vLLM --max-num-seqs)")
    p.add_argument("--timeout", type=int, default=600, help="request timeout in seconds (at most 3600)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--env", action="append", metavar="NAME=VALUE")
    p.add_argument("--secret", action="append", metavar="NAME=SECRET:VERSION")
    p.add_argument("--volume", action="append", metavar="NAME=BUCKET:/path")
    p.add_argument("--label", action="append", metavar="KEY=VALUE")
    p.add_argument("--service-account")
    p.add_argument("--allow-unauthenticated", action="store_true", help="public service (default: IAM only)")
    p.add_argument("--gpu-zonal-redundancy", action="store_true", help="reserve capacity in other zones")
    p.add_argument("--startup-probe-path", help="HTTP path for the startup probe (default /health; 'tcp')")
    p.add_argument("--startup-probe-period-s", type=int)
    p.add_argument("--startup-probe-failures", type=int)
    p.add_argument("--model-load-s", type=int, help="how long model loading may take (sizes the probe check)")
    p.add_argument("--skip-region-check", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the gcloud command, send nothing")
    p.add_argument("--args", help="container args as gcloud takes them: --args=--max-num-seqs=8,--enable-lora")
    p.set_defaults(func=_deploy)


def _deploy_dashboard(args: argparse.Namespace) -> int:
    spec = dashboard_spec(
        args.image, name=args.name, project=args.project, region=args.region,
        min_instances=args.min_instances,
        max_instances=args.max_instances, concurrency=args.concurrency, cpu=args.cpu, memory=args.memory,
        presenter_secret=None if args.presenter_secret == "none" else args.presenter_secret,
        presenter_emails=args.presenter_email, trust_iap=args.trust_iap, results_root=args.results_root,
        env=parse_pairs(args.env, "--env"), service_account=args.service_account,
    )
    argv = render_dashboard_deploy(spec, trust_iap=args.trust_iap)
    print(format_command(argv))
    if args.dry_run:
        print(json.dumps({"dry_run": True, "service": spec.name, "command": argv}))
        return 0
    code = run_gcloud(argv)
    print(json.dumps({"dry_run": False, "service": spec.name, "command": argv, "exit_code": code}))
    return code


def _add_dashboard_parser(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser("dashboard", help="deploy the Streamlit dashboard (public, attendee mode)",
                         description="Print (--dry-run) or run the gcloud command that deploys the dashboard "
                                     "image built from the repository's Dockerfile.")
    p.add_argument("--image", required=True, help="the dashboard image (docker build -t IMAGE .)")
    p.add_argument("--name", default="pets-dashboard", help="service name (default pets-dashboard)")
    p.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    p.add_argument("--region", help="region (default CLOUD_RUN_REGION)")
    p.add_argument("--min-instances", type=int, default=1,
                   help="warm instances (default 1: no cold start on stage)")
    p.add_argument("--max-instances", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=80, help="browser sessions (WebSockets) per instance")
    p.add_argument("--cpu", type=float, default=1)
    p.add_argument("--memory", default="1Gi")
    p.add_argument("--presenter-secret", default="presenter-token:latest",
                   help="Secret Manager secret:version holding the presenter token ('none' for no token)")
    p.add_argument("--presenter-email", action="append", help="an address IAP may vouch for (repeatable)")
    p.add_argument("--trust-iap", action="store_true",
                   help="trust IAP's identity header (only behind a load balancer with IAP; sets ingress)")
    p.add_argument("--results-root", help="where the Accuracy report reads results (gs://bucket/results)")
    p.add_argument("--env", action="append", metavar="NAME=VALUE", help="more environment variables")
    p.add_argument("--service-account", help="the service's identity (needs secret access and run.viewer)")
    p.add_argument("--dry-run", action="store_true", help="print the gcloud command, run nothing")
    p.set_defaults(func=_deploy_dashboard)


def add_job_arguments(parser: argparse.ArgumentParser, *, name: str, gpu_default: str) -> None:
    """Flags shared by job-submitting commands (`finetune submit`): where, how big, how many, what to mount."""
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register deploy, discover, coldstart, jobs and executions."""
    deploy = sub.add_parser("deploy", help="deploy to Cloud Run (dry run prints the gcloud command)")
    kinds = deploy.add_subparsers(dest="deploy_command", required=True, metavar="KIND")
    _add_service_parser(kinds)
    _add_dashboard_parser(kinds)

    p = sub.add_parser("discover", help="list Cloud Run model services and probe their /v1/models")
    p.add_argument("--project")
    p.add_argument("--region", action="append", help="region to search (repeatable; default CLOUD_RUN_REGIONS)")
    p.add_argument("--label", help="only services with this label (KEY or KEY=VALUE)")
    p.add_argument("--no-probe", action="store_true", help="list only, do not call the services")
    p.add_argument("--timeout-s", type=float, default=5.0, help="per-service probe timeout")
    p.add_argument("--max-age-s", type=float, default=300.0, help="reuse a cached discovery this recent")
    p.add_argument("--refresh", action="store_true", help="ignore the cache")
    p.set_defaults(func=_discover)

    p = sub.add_parser("coldstart", help="time the first (cold) and a warm request to a backend")
    p.add_argument("target", help="backend name (models.toml or discovered) or a service URL")
    p.add_argument("--model", help="model name (needed with a URL)")
    p.add_argument("--image", help="photo to send (default: the first in PETS_DIR)")
    p.add_argument("--deadline-s", type=float, default=900.0, help="give up after this long (default 900)")
    p.add_argument("--no-save", action="store_true", help="do not store the result")
    p.set_defaults(func=_coldstart)

    jobs = sub.add_parser("jobs", help="Cloud Run jobs").add_subparsers(dest="jobs_command", required=True)
    p = jobs.add_parser("list", help="list jobs in a region")
    p.add_argument("--project")
    p.add_argument("--region")
    p.set_defaults(func=_jobs_list)

    execs = sub.add_parser("executions", help="Cloud Run job executions").add_subparsers(
        dest="executions_command", required=True)
    p = execs.add_parser("list", help="list executions of a job")
    p.add_argument("job")
    p.add_argument("--project")
    p.add_argument("--region")
    p.set_defaults(func=_executions_list)
