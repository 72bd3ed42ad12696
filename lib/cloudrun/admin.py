"""The Cloud Run Admin API v2 (`google-cloud-run`, `run_v2`): apply specs, list services, jobs, executions.

Every call goes through `_api_errors`, which turns Google's exceptions into a `UserError` that
says what to change (credentials, project id, IAM role). Clients come from `make_clients`; with
`CLOUD_RUN_API_ENDPOINT` set to a loopback host:port they talk plain gRPC to a local server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import grpc
from google.api import launch_stage_pb2
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2

from lib.cloudrun.specs import JobSpec, ServiceSpec, _Common
from lib.errors import UserError
from lib.settings import Settings, load_settings

__all__ = [
    "Clients",
    "ServiceInfo",
    "JobInfo",
    "ExecutionInfo",
    "make_clients",
    "service_message",
    "job_message",
    "apply_service",
    "list_services",
    "apply_job",
    "run_job",
    "follow_execution",
    "get_execution",
    "list_jobs",
    "list_executions",
]

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Clients:
    """One `run_v2` client per Admin API service, sharing a channel when pointed at a local server."""

    services: run_v2.ServicesClient
    jobs: run_v2.JobsClient
    executions: run_v2.ExecutionsClient


@dataclass(frozen=True)
class ServiceInfo:
    """What discovery needs to know about one Cloud Run service."""

    name: str
    region: str
    url: str
    image: str
    gpu_type: str | None
    gpu_count: int
    cpu: str
    memory: str
    min_instances: int
    max_instances: int
    concurrency: int
    latest_ready_revision: str
    ready: bool
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobInfo:
    """One Cloud Run job."""

    name: str
    region: str
    image: str
    gpu_type: str | None
    task_count: int
    max_retries: int
    timeout_s: int
    latest_execution: str | None


@dataclass(frozen=True)
class ExecutionInfo:
    """One execution of a job; `state` is running, succeeded, failed, cancelled or pending."""

    name: str
    job: str
    state: str
    start_time: str | None
    completion_time: str | None
    duration_s: float | None
    tasks_succeeded: int
    tasks_failed: int
    tasks_running: int
    log_uri: str


def make_clients(settings: Settings | None = None) -> Clients:
    """Production clients (application default credentials), or plain gRPC to a loopback test server."""
    settings = settings or load_settings()
    endpoint = settings.cloud_run_api_endpoint
    if not endpoint:
        with _api_errors("connect to the Cloud Run Admin API"):
            return Clients(run_v2.ServicesClient(), run_v2.JobsClient(), run_v2.ExecutionsClient())
    if not endpoint.startswith(_LOOPBACK):
        raise UserError(f"CLOUD_RUN_API_ENDPOINT={endpoint!r}: only a loopback host:port is allowed "
                        f"(it is for local test servers); unset it to use Google's API")
    from google.cloud.run_v2.services.executions.transports import ExecutionsGrpcTransport
    from google.cloud.run_v2.services.jobs.transports import JobsGrpcTransport
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

    channel = grpc.insecure_channel(endpoint)
    return Clients(
        run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel)),
        run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel)),
        run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel)),
    )


@contextlib.contextmanager
def _api_errors(action: str, project: str | None = None) -> Iterator[None]:
    """Google API exceptions -> `UserError` with the fix."""
    where = f" in project {project!r}" if project else ""
    try:
        yield
    except auth_exc.DefaultCredentialsError:
        raise UserError(f"cannot {action}: no Google credentials found. Run `gcloud auth application-default "
                        f"login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file") from None
    except gexc.PermissionDenied as exc:
        raise UserError(f"cannot {action}{where}: permission denied ({exc.message}). Check the project id "
                        f"(--project / GOOGLE_CLOUD_PROJECT) and that your account has roles/run.viewer "
                        f"(roles/run.developer to deploy)") from None
    except gexc.NotFound as exc:
        raise UserError(f"cannot {action}{where}: not found ({exc.message}). Check that the project exists "
                        f"(--project / GOOGLE_CLOUD_PROJECT) and the name and region are right") from None
    except gexc.Unauthenticated as exc:
        raise UserError(f"cannot {action}: credentials rejected ({exc.message}). Run `gcloud auth "
                        f"application-default login` again") from None
    except gexc.InvalidArgument as exc:
        raise UserError(f"cannot {action}{where}: the API refused the request: {exc.message}") from None
    except (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded) as exc:
        raise UserError(f"cannot {action}: the Cloud Run Admin API did not answer ({exc}). Check the network "
                        f"(or CLOUD_RUN_API_ENDPOINT) and try again") from None
    except gexc.GoogleAPICallError as exc:
        raise UserError(f"cannot {action}{where}: {exc.message or exc}") from None


# --- spec -> run_v2 messages -------------------------------------------------------------------


def _container(spec: _Common, *, port: int | None = None, cpu_idle: bool | None = None) -> run_v2.Container:
    limits = {"cpu": f"{spec.cpu_value:g}", "memory": spec.memory_value}
    if spec.gpu:
        limits["nvidia.com/gpu"] = "1"
    env = [run_v2.EnvVar(name=k, value=v) for k, v in spec.env.items()]
    for key, ref in spec.secrets.items():
        secret, version = ref.split(":", 1)
        selector = run_v2.SecretKeySelector(secret=secret, version=version)
        env.append(run_v2.EnvVar(name=key, value_source=run_v2.EnvVarSource(secret_key_ref=selector)))
    container = run_v2.Container(
        image=spec.image, command=spec.command, args=spec.args, env=env,
        resources=run_v2.ResourceRequirements(limits=limits),
        volume_mounts=[run_v2.VolumeMount(name=v.name, mount_path=v.mount_path) for v in spec.volumes],
    )
    if cpu_idle is not None:
        container.resources.cpu_idle = cpu_idle
    if port is not None:
        container.ports = [run_v2.ContainerPort(container_port=port)]
    return container


def _volumes(spec: _Common) -> list[run_v2.Volume]:
    return [run_v2.Volume(name=v.name, gcs=run_v2.GCSVolumeSource(bucket=v.bucket, read_only=v.read_only))
            for v in spec.volumes]


def _launch_stage(spec: _Common) -> int:
    # Preview GPUs (RTX PRO 6000) must be asked for with a pre-GA launch stage through the API.
    stage = launch_stage_pb2.LaunchStage
    return stage.BETA if spec.gpu and spec.gpu.preview else stage.GA


def service_message(spec: ServiceSpec) -> run_v2.Service:
    """The `run_v2.Service` equal to `render_deploy(spec)`, field for field."""
    spec.check()
    probe = spec.probe
    container = _container(spec, port=spec.port, cpu_idle=spec.cpu_throttling_value)
    container.startup_probe = run_v2.Probe(
        initial_delay_seconds=probe.initial_delay_s, period_seconds=probe.period_s,
        timeout_seconds=probe.timeout_s, failure_threshold=probe.failure_threshold,
        http_get=run_v2.HTTPGetAction(path=probe.path, port=spec.port) if probe.path else None,
        tcp_socket=None if probe.path else run_v2.TCPSocketAction(port=spec.port),
    )
    template = run_v2.RevisionTemplate(
        scaling=run_v2.RevisionScaling(min_instance_count=spec.min_instances, max_instance_count=spec.max_instances),
        timeout=dt.timedelta(seconds=spec.timeout_s),
        max_instance_request_concurrency=spec.concurrency_value,
        containers=[container],
        volumes=_volumes(spec),
        service_account=spec.service_account or "",
    )
    if spec.gpu:
        template.node_selector = run_v2.NodeSelector(accelerator=spec.gpu.name)
        template.gpu_zonal_redundancy_disabled = not spec.gpu_zonal_redundancy
    return run_v2.Service(template=template, labels=spec.labels, launch_stage=_launch_stage(spec))


def job_message(spec: JobSpec) -> run_v2.Job:
    """The `run_v2.Job` equal to `render_job_create(spec)`, field for field."""
    spec.check()
    task = run_v2.TaskTemplate(
        containers=[_container(spec)], volumes=_volumes(spec), max_retries=spec.max_retries,
        timeout=dt.timedelta(seconds=spec.task_timeout_s), service_account=spec.service_account or "",
    )
    if spec.gpu:
        task.node_selector = run_v2.NodeSelector(accelerator=spec.gpu.name)
        task.gpu_zonal_redundancy_disabled = not spec.gpu_zonal_redundancy
    template = run_v2.ExecutionTemplate(task_count=spec.tasks, parallelism=spec.parallelism or 0, template=task)
    return run_v2.Job(template=template, labels=spec.labels, launch_stage=_launch_stage(spec))


# --- services ----------------------------------------------------------------------------------


def _project(spec: _Common, settings: Settings | None) -> str:
    project = spec.project or (settings or load_settings()).google_cloud_project
    if not project:
        raise UserError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    return project


def apply_service(spec: ServiceSpec, *, clients: Clients | None = None, timeout_s: float = 1800) -> ServiceInfo:
    """Create or update the service (what `gcloud run deploy` does) and wait until it is ready."""
    project = _project(spec, None)
    clients = clients or make_clients()
    parent = f"projects/{project}/locations/{spec.region}"
    message = service_message(spec)
    with _api_errors(f"deploy service {spec.name}", project):
        try:
            clients.services.get_service(name=f"{parent}/services/{spec.name}")
            message.name = f"{parent}/services/{spec.name}"
            operation = clients.services.update_service(service=message)
        except gexc.NotFound:
            operation = clients.services.create_service(parent=parent, service=message, service_id=spec.name)
        service = operation.result(timeout=timeout_s)
        if spec.allow_unauthenticated:
            policy = clients.services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=service.name))
            policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
            clients.services.set_iam_policy(
                request=iam_policy_pb2.SetIamPolicyRequest(resource=service.name, policy=policy))
    return service_info(service)


def service_info(service: run_v2.Service) -> ServiceInfo:
    """A `run_v2.Service` as the flat record discovery and the Fleet page use."""
    template = service.template
    container = template.containers[0] if template.containers else run_v2.Container()
    limits = dict(container.resources.limits)
    accelerator = template.node_selector.accelerator or None
    gpu_count = int(limits.get("nvidia.com/gpu", "1" if accelerator else "0") or 0)
    min_instances = max(service.scaling.min_instance_count, template.scaling.min_instance_count)
    max_instances = template.scaling.max_instance_count or service.scaling.max_instance_count or 100
    parts = service.name.split("/")
    ready = service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    return ServiceInfo(
        name=parts[-1], region=parts[3] if len(parts) > 3 else "", url=service.uri, image=container.image,
        gpu_type=accelerator, gpu_count=gpu_count, cpu=limits.get("cpu", ""), memory=limits.get("memory", ""),
        min_instances=min_instances, max_instances=max_instances,
        concurrency=template.max_instance_request_concurrency or 80,
        latest_ready_revision=service.latest_ready_revision.split("/")[-1], ready=ready,
        labels=dict(service.labels),
    )


def list_services(
    project: str, regions: Sequence[str], *, label: str | None = None, clients: Clients | None = None,
    page_size: int = 100,
) -> list[ServiceInfo]:
    """Services in `regions` (listed in parallel, all pages), optionally only those with label `k` or `k=v`."""
    clients = clients or make_clients()

    def one(region: str) -> list[ServiceInfo]:
        with _api_errors(f"list Cloud Run services in {region}", project):
            pager = clients.services.list_services(
                request={"parent": f"projects/{project}/locations/{region}", "page_size": page_size}, timeout=30)
            return [service_info(s) for s in pager]

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(regions)))) as pool:
        found = [info for batch in pool.map(one, regions) for info in batch]
    if label:
        key, _, value = label.partition("=")
        found = [s for s in found if key in s.labels and (not value or s.labels[key] == value)]
    return sorted(found, key=lambda s: (s.region, s.name))


# --- jobs --------------------------------------------------------------------------------------


def apply_job(spec: JobSpec, *, clients: Clients | None = None, timeout_s: float = 600) -> str:
    """Create or update the job (`gcloud run jobs create`/`update`); returns its full resource name."""
    project = _project(spec, None)
    clients = clients or make_clients()
    parent = f"projects/{project}/locations/{spec.region}"
    message = job_message(spec)
    with _api_errors(f"create job {spec.name}", project):
        try:
            clients.jobs.get_job(name=f"{parent}/jobs/{spec.name}")
            message.name = f"{parent}/jobs/{spec.name}"
            job = clients.jobs.update_job(job=message).result(timeout=timeout_s)
        except gexc.NotFound:
            job = clients.jobs.create_job(parent=parent, job=message, job_id=spec.name).result(timeout=timeout_s)
    return job.name


def run_job(
    job_name: str, *, clients: Clients | None = None, tasks: int | None = None, args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Start an execution (`gcloud run jobs execute`), optionally overriding tasks/args/env; returns its name."""
    clients = clients or make_clients()
    request = run_v2.RunJobRequest(name=job_name)
    if tasks is not None or args is not None or env:
        override = run_v2.RunJobRequest.Overrides.ContainerOverride(
            args=args or [], env=[run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()])
        request.overrides = run_v2.RunJobRequest.Overrides(container_overrides=[override], task_count=tasks or 0)
    with _api_errors(f"run job {job_name.split('/')[-1]}"):
        operation = clients.jobs.run_job(request=request)
        return operation.metadata.name


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def execution_info(execution: run_v2.Execution) -> ExecutionInfo:
    """A `run_v2.Execution` as a flat record with a plain state word."""
    failed_condition = any(c.type_ == "Completed" and c.state == run_v2.Condition.State.CONDITION_FAILED
                           for c in execution.conditions)
    if execution.completion_time:
        state = ("cancelled" if execution.cancelled_count else
                 "failed" if execution.failed_count or failed_condition else "succeeded")
    elif execution.start_time or execution.running_count:
        state = "running"
    else:
        state = "pending"
    start, end = execution.start_time, execution.completion_time
    return ExecutionInfo(
        name=execution.name.split("/")[-1], job=execution.job, state=state, start_time=_iso(start),
        completion_time=_iso(end), duration_s=(end - start).total_seconds() if start and end else None,
        tasks_succeeded=execution.succeeded_count, tasks_failed=execution.failed_count,
        tasks_running=execution.running_count, log_uri=execution.log_uri,
    )


def get_execution(name: str, *, clients: Clients | None = None) -> ExecutionInfo:
    """The current state of one execution (full resource name)."""
    clients = clients or make_clients()
    with _api_errors(f"read execution {name.split('/')[-1]}"):
        return execution_info(clients.executions.get_execution(name=name))


def follow_execution(
    name: str, *, clients: Clients | None = None, poll_s: float = 10.0, timeout_s: float = 7 * 24 * 3600,
    on_change: Callable[[ExecutionInfo], None] | None = None,
) -> ExecutionInfo:
    """Poll an execution until it ends (or `timeout_s`), calling `on_change` whenever its counts change."""
    clients = clients or make_clients()
    deadline = time.monotonic() + timeout_s
    last: tuple[Any, ...] | None = None
    while True:
        info = get_execution(name, clients=clients)
        key = (info.state, info.tasks_running, info.tasks_succeeded, info.tasks_failed)
        if key != last and on_change:
            on_change(info)
        last = key
        if info.state in ("succeeded", "failed", "cancelled") or time.monotonic() >= deadline:
            return info
        time.sleep(poll_s)


def list_jobs(project: str, region: str, *, client: run_v2.JobsClient | None = None) -> list[JobInfo]:
    """Jobs in one region, newest definitions first as the API returns them."""
    client = client or make_clients().jobs
    jobs = []
    with _api_errors(f"list Cloud Run jobs in {region}", project):
        for job in client.list_jobs(parent=f"projects/{project}/locations/{region}", timeout=30):
            task = job.template.template
            container = task.containers[0] if task.containers else run_v2.Container()
            jobs.append(JobInfo(
                name=job.name.split("/")[-1], region=region, image=container.image,
                gpu_type=task.node_selector.accelerator or None, task_count=job.template.task_count,
                max_retries=task.max_retries, timeout_s=int(task.timeout.total_seconds()) if task.timeout else 600,
                latest_execution=job.latest_created_execution.name.split("/")[-1] or None,
            ))
    return jobs


def list_executions(
    project: str, region: str, job: str, *, client: run_v2.ExecutionsClient | None = None,
) -> list[ExecutionInfo]:
    """Executions of one job, as the API orders them (newest first)."""
    client = client or make_clients().executions
    with _api_errors(f"list executions of job {job}", project):
        pager = client.list_executions(parent=f"projects/{project}/locations/{region}/jobs/{job}", timeout=30)
        return [execution_info(e) for e in pager]
