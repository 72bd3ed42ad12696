"""Specs rendered as the exact `gcloud` argv (the dry run), flag for flag what the Admin API call sets.

Every valued flag is written `--flag=value`: argument lists for vLLM start with `--`, and the `=`
form is the one gcloud never mistakes for a flag of its own.
"""

from __future__ import annotations

import shlex
from typing import Iterable, Mapping

from lib.cloudrun.specs import JobSpec, ProbeSpec, ServiceSpec, _Common

__all__ = ["split_list", "render_deploy", "render_job_create", "render_job_execute", "format_command", "probe_flag"]

_DELIMITERS = "|@#;~^"


def _join(items: Iterable[str]) -> str:
    """A gcloud list value; switches the delimiter (gcloud's `^D^` escape) when an item holds a comma."""
    items = list(items)
    if not any("," in item for item in items):
        return ",".join(items)
    for delim in _DELIMITERS:
        if not any(delim in item for item in items):
            return f"^{delim}^" + delim.join(items)
    raise ValueError("cannot find a delimiter for gcloud list value")


def split_list(value: str) -> list[str]:
    """The inverse of a gcloud list value: `"a,b"` or `"^|^a,1|b"` -> items."""
    if value.startswith("^") and len(value) > 2 and value[2] == "^":
        return value[3:].split(value[1])
    return value.split(",") if value else []


def _pairs(mapping: Mapping[str, str]) -> str:
    return _join(f"{k}={v}" for k, v in mapping.items())


def _number(value: float) -> str:
    return f"{value:g}"


def probe_flag(probe: ProbeSpec, port: int) -> str:
    """The `--startup-probe` value: HTTP GET when the probe has a path, else a TCP connect."""
    target = f"httpGet.path={probe.path},httpGet.port={port}" if probe.path else f"tcpSocket.port={port}"
    return (f"{target},initialDelaySeconds={probe.initial_delay_s},periodSeconds={probe.period_s},"
            f"timeoutSeconds={probe.timeout_s},failureThreshold={probe.failure_threshold}")


def _location(spec: _Common) -> list[str]:
    return ([f"--project={spec.project}"] if spec.project else []) + [f"--region={spec.region}"]


def _resources(spec: _Common) -> list[str]:
    argv = [f"--cpu={_number(spec.cpu_value)}", f"--memory={spec.memory_value}"]
    if spec.gpu:
        argv += ["--gpu=1", f"--gpu-type={spec.gpu.name}"]
        argv.append("--gpu-zonal-redundancy" if spec.gpu_zonal_redundancy else "--no-gpu-zonal-redundancy")
    return argv


def _container(spec: _Common) -> list[str]:
    argv = []
    if spec.command:
        argv.append(f"--command={_join(spec.command)}")
    if spec.args:
        argv.append(f"--args={_join(spec.args)}")
    if spec.env:
        argv.append(f"--set-env-vars={_pairs(spec.env)}")
    if spec.secrets:
        argv.append(f"--set-secrets={_pairs(spec.secrets)}")
    for volume in spec.volumes:
        argv.append(f"--add-volume=name={volume.name},type=cloud-storage,bucket={volume.bucket}"
                    + (",readonly=true" if volume.read_only else ""))
        argv.append(f"--add-volume-mount=volume={volume.name},mount-path={volume.mount_path}")
    if spec.service_account:
        argv.append(f"--service-account={spec.service_account}")
    if spec.labels:
        argv.append(f"--labels={_pairs(spec.labels)}")
    return argv


def render_deploy(spec: ServiceSpec) -> list[str]:
    """`gcloud run deploy NAME ...` for a validated service spec."""
    spec.check()
    argv = ["gcloud", "run", "deploy", spec.name, f"--image={spec.image}", *_location(spec), *_resources(spec)]
    argv.append("--cpu-throttling" if spec.cpu_throttling_value else "--no-cpu-throttling")
    argv += [
        f"--concurrency={spec.concurrency_value}",
        f"--min-instances={spec.min_instances}",
        f"--max-instances={spec.max_instances}",
        f"--timeout={spec.timeout_s}",
        f"--port={spec.port}",
        f"--startup-probe={probe_flag(spec.probe, spec.port)}",
        *_container(spec),
    ]
    argv.append("--allow-unauthenticated" if spec.allow_unauthenticated else "--no-allow-unauthenticated")
    return argv


def render_job_create(spec: JobSpec) -> list[str]:
    """`gcloud run jobs create NAME ...` for a validated job spec."""
    spec.check()
    argv = ["gcloud", "run", "jobs", "create", spec.name, f"--image={spec.image}", *_location(spec),
            *_resources(spec), f"--tasks={spec.tasks}"]
    if spec.parallelism:
        argv.append(f"--parallelism={spec.parallelism}")
    argv += [f"--max-retries={spec.max_retries}", f"--task-timeout={spec.task_timeout_s}s", *_container(spec)]
    return argv


def render_job_execute(
    spec: JobSpec, *, wait: bool = True, tasks: int | None = None, args: list[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """`gcloud run jobs execute NAME ...`, optionally overriding task count, args and env for this run."""
    argv = ["gcloud", "run", "jobs", "execute", spec.name, *_location(spec)]
    if tasks is not None:
        argv.append(f"--tasks={tasks}")
    if args is not None:
        argv.append(f"--args={_join(args)}")
    if env:
        argv.append(f"--update-env-vars={_pairs(env)}")
    if wait:
        argv.append("--wait")
    return argv


def format_command(argv: list[str], *, multiline: bool = True) -> str:
    """Shell-quoted command, one flag per line (as Google's docs print them) when `multiline`."""
    if not multiline:
        return shlex.join(argv)
    head = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    return " \\\n  ".join([shlex.join(head), *(shlex.quote(f) for f in flags)])
