"""Cloud Run service and job specs, validated before anything is sent to Google.

The GPU rules come from Google's pages "GPU support for services" and "Configure GPUs for Cloud
Run jobs" (cloud.google.com/run/docs/configuring/services/gpu, .../jobs/gpu), read 2026:
one GPU per instance; L4 needs at least 4 CPU and 16 GiB, RTX PRO 6000 (Preview) at least 20 CPU
and 80 GiB; CPU always allocated; startup probe window (failureThreshold x periodSeconds) at most
1800 s with a GPU (600 s without); GPU job tasks at most 1 hour; request timeout at most 3600 s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib.errors import UserError

__all__ = [
    "GPU_TYPES",
    "GpuType",
    "ProbeSpec",
    "BucketVolume",
    "ServiceSpec",
    "JobSpec",
    "SpecError",
    "memory_gib",
    "max_num_seqs_from_args",
    "build_spec",
]

GpuName = Literal["nvidia-l4", "nvidia-rtx-pro-6000", "none"]


class SpecError(UserError):
    """A deploy or job spec that Cloud Run would refuse (or that would not work); says what to change."""


@dataclass(frozen=True)
class GpuType:
    """One Cloud Run GPU type and what an instance with it needs."""

    name: str
    min_cpu: float
    min_memory_gib: float
    vram_gib: int
    regions: tuple[str, ...]
    preview: bool
    model_load_s: int  # how long the startup probe should allow for loading weights, by default


# Regions: L4 from the services GPU page (asia-south1 is by invitation only). The RTX PRO 6000 list
# is the Preview list as far as we could read it (us-central1, europe-west4, asia-southeast1); if
# Google has added a region since, pass `--skip-region-check`.
GPU_TYPES: dict[str, GpuType] = {
    "nvidia-l4": GpuType(
        "nvidia-l4", 4, 16, 24,
        ("asia-south1", "asia-southeast1", "europe-west1", "europe-west4", "us-central1", "us-east4"),
        preview=False, model_load_s=300,
    ),
    "nvidia-rtx-pro-6000": GpuType(
        "nvidia-rtx-pro-6000", 20, 80, 96, ("asia-southeast1", "europe-west4", "us-central1"),
        preview=True, model_load_s=900,
    ),
}

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Gi|Mi|G|M)$")
_NAME = r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$"  # Cloud Run: lowercase, digits, hyphens; < 50 chars


def memory_gib(value: str) -> float:
    """`"32Gi"` -> 32.0; Cloud Run memory strings in Gi, Mi, G or M."""
    match = _MEMORY.match(value.strip())
    if not match:
        raise SpecError(f"memory {value!r} is not understood; write it like 16Gi or 512Mi")
    number, unit = float(match.group(1)), match.group(2)
    return {"Gi": number, "Mi": number / 1024, "G": number * 1e9 / 2**30, "M": number * 1e6 / 2**30}[unit]


def max_num_seqs_from_args(args: list[str]) -> int | None:
    """vLLM's `--max-num-seqs` from a container's args (`--max-num-seqs=N` or `--max-num-seqs N`)."""
    for i, arg in enumerate(args):
        if arg.startswith("--max-num-seqs="):
            value = arg.split("=", 1)[1]
        elif arg == "--max-num-seqs" and i + 1 < len(args):
            value = args[i + 1]
        else:
            continue
        try:
            return int(value)
        except ValueError:
            raise SpecError(f"--max-num-seqs must be a whole number, got {value!r}") from None
    return None


class ProbeSpec(BaseModel):
    """A startup probe: HTTP GET `path` (or a TCP connect when `path` is None) on the container port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = "/health"
    initial_delay_s: int = Field(default=0, ge=0, le=240)
    period_s: int = Field(default=10, ge=1, le=240)
    timeout_s: int = Field(default=5, ge=1, le=240)
    failure_threshold: int = Field(default=60, ge=1)

    @property
    def window_s(self) -> int:
        """How long the container may take to pass the probe before Cloud Run gives up."""
        return self.initial_delay_s + self.failure_threshold * self.period_s


class BucketVolume(BaseModel):
    """A Cloud Storage bucket mounted with Cloud Storage FUSE (weights, adapters, checkpoints)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][-a-z0-9]{0,62}$")
    bucket: str = Field(pattern=r"^[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9]$")
    mount_path: str = Field(pattern=r"^/[^,=]*$")
    read_only: bool = True


class _Common(BaseModel):
    """Fields shared by services and jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    image: str = Field(min_length=1)
    project: str | None = None
    region: str = Field(default="europe-west4", pattern=r"^[a-z]+-[a-z]+\d+$")
    gpu_type: GpuName = "none"
    gpu_count: int = 1
    cpu: float | None = None  # None: the GPU type's minimum, or 1 without a GPU
    memory: str | None = None  # None: the GPU type's minimum, or 512Mi without a GPU
    gpu_zonal_redundancy: bool = False  # False is cheaper and is what GPU quota is usually granted for
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)  # ENV_NAME -> "secret:version"
    volumes: list[BucketVolume] = Field(default_factory=list)
    service_account: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    skip_region_check: bool = False

    @property
    def gpu(self) -> GpuType | None:
        return GPU_TYPES.get(self.gpu_type)

    @property
    def cpu_value(self) -> float:
        return self.cpu if self.cpu is not None else (self.gpu.min_cpu if self.gpu else 1)

    @property
    def memory_value(self) -> str:
        if self.memory is not None:
            return self.memory
        return f"{self.gpu.min_memory_gib:g}Gi" if self.gpu else "512Mi"

    def _check_common(self) -> None:
        gpu = self.gpu
        memory = memory_gib(self.memory_value)
        if self.cpu_value <= 0:
            raise SpecError(f"--cpu must be positive, got {self.cpu_value:g}")
        if self.cpu_value > 1 and self.cpu_value != int(self.cpu_value):
            raise SpecError(f"--cpu above 1 must be a whole number, got {self.cpu_value:g}")
        for key in list(self.env) + list(self.secrets):
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise SpecError(f"environment variable name {key!r} is not valid (letters, digits, _)")
        for key, ref in self.secrets.items():
            if not re.match(r"^[A-Za-z0-9_-]+:(latest|\d+)$", ref):
                raise SpecError(f"secret for {key} must look like SECRET_NAME:latest or SECRET_NAME:3, got {ref!r}")
        if len({v.name for v in self.volumes}) != len(self.volumes):
            raise SpecError("volume names must be unique")
        if gpu is None:
            return
        if self.gpu_count != 1:
            raise SpecError(f"Cloud Run attaches exactly one GPU per instance; got --gpu {self.gpu_count}. "
                            "Use --gpu 1.")
        if not self.skip_region_check and self.region not in gpu.regions:
            raise SpecError(
                f"{gpu.name} GPUs are not offered in {self.region}; use --region with one of "
                f"{', '.join(gpu.regions)} (or --skip-region-check if Google added {self.region} since)"
            )
        if self.cpu_value < gpu.min_cpu:
            raise SpecError(f"{gpu.name} needs at least {gpu.min_cpu:g} CPU; got --cpu {self.cpu_value:g}. "
                            f"Use --cpu {gpu.min_cpu:g} or more.")
        if memory < gpu.min_memory_gib:
            raise SpecError(f"{gpu.name} needs at least {gpu.min_memory_gib:g}Gi of memory; got --memory "
                            f"{self.memory_value}. Use --memory {gpu.min_memory_gib:g}Gi or more.")


class ServiceSpec(_Common):
    """Everything `gcloud run deploy` needs for one service; `check()` raises `SpecError`."""

    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=1, ge=1)
    concurrency: int | None = Field(default=None, ge=1, le=1000)  # None: vLLM's max-num-seqs, or 80
    timeout_s: int = Field(default=600, ge=1)
    port: int = Field(default=8080, ge=1, le=65535)
    cpu_throttling: bool | None = None  # None: always allocated with a GPU, throttled without
    startup_probe: ProbeSpec | None = None  # None: HTTP /health sized for the GPU type's model load
    model_load_s: int | None = Field(default=None, ge=1)  # None: the GPU type's typical load time
    allow_unauthenticated: bool = False

    @property
    def concurrency_value(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return max_num_seqs_from_args(self.args) or (4 if self.gpu else 80)

    @property
    def cpu_throttling_value(self) -> bool:
        return False if self.gpu else (self.cpu_throttling if self.cpu_throttling is not None else True)

    @property
    def load_budget_s(self) -> int:
        return self.model_load_s or (self.gpu.model_load_s if self.gpu else 60)

    @property
    def probe(self) -> ProbeSpec:
        if self.startup_probe is not None:
            return self.startup_probe
        period = 10
        return ProbeSpec(period_s=period, timeout_s=5, failure_threshold=math.ceil(self.load_budget_s / period))

    def check(self) -> "ServiceSpec":
        """Raise `SpecError` (what to change) for anything Cloud Run or the model would reject."""
        self._check_common()
        if self.timeout_s > 3600:
            raise SpecError(f"--timeout {self.timeout_s} is above Cloud Run's 3600 s request limit; use at most 3600")
        if self.min_instances > self.max_instances:
            raise SpecError(f"--min-instances {self.min_instances} is above --max-instances {self.max_instances}")
        if self.gpu and self.cpu_throttling:
            raise SpecError("a GPU service needs CPU always allocated; drop --cpu-throttling")
        seqs = max_num_seqs_from_args(self.args)
        if seqs is not None and self.concurrency_value > seqs:
            raise SpecError(
                f"--concurrency {self.concurrency_value} is above vLLM's --max-num-seqs {seqs}: extra requests "
                f"would queue inside vLLM where Cloud Run cannot see them and scale out. Use --concurrency {seqs} "
                f"or raise --max-num-seqs."
            )
        probe = self.probe
        max_window = 1800 if self.gpu else 600
        if probe.failure_threshold * probe.period_s > max_window:
            raise SpecError(f"startup probe failureThreshold x periodSeconds is "
                            f"{probe.failure_threshold * probe.period_s} s; Cloud Run allows at most {max_window} s")
        if probe.timeout_s > probe.period_s:
            raise SpecError("startup probe timeoutSeconds must not exceed periodSeconds")
        if probe.window_s < self.load_budget_s:
            raise SpecError(
                f"the startup probe gives the container {probe.window_s} s but loading the model is expected to take "
                f"{self.load_budget_s} s; raise the probe's failure threshold or period"
            )
        return self


class JobSpec(_Common):
    """Everything `gcloud run jobs create` needs; reused by fine-tuning and multi-task load jobs."""

    tasks: int = Field(default=1, ge=1, le=10000)
    parallelism: int | None = Field(default=None, ge=0)  # None/0: as many as quota allows
    max_retries: int = Field(default=3, ge=0, le=10)
    task_timeout_s: int = Field(default=3600, ge=1)

    def check(self) -> "JobSpec":
        """Raise `SpecError` (what to change) for anything Cloud Run would reject."""
        self._check_common()
        limit = 3600 if self.gpu else 168 * 3600  # "For tasks using GPUs, the maximum ... is 1 hour"
        if self.task_timeout_s > limit:
            raise SpecError(f"--task-timeout {self.task_timeout_s} s is above the {limit} s limit for "
                            f"{'GPU ' if self.gpu else ''}job tasks; checkpoint and let retries resume instead")
        if self.parallelism and self.parallelism > self.tasks:
            raise SpecError(f"--parallelism {self.parallelism} is above --tasks {self.tasks}")
        return self


SpecT = TypeVar("SpecT", ServiceSpec, JobSpec)


def build_spec(cls: type[SpecT], **fields: object) -> SpecT:
    """Build and validate a spec, turning pydantic errors into one `SpecError` naming the fields."""
    known = {k: v for k, v in fields.items() if v is not None}
    try:
        spec = cls.model_validate(known)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "spec"
            if field == "gpu_type":
                problems.append(f"unknown GPU type {known.get('gpu_type')!r}; use one of "
                                f"{', '.join([*GPU_TYPES, 'none'])}")
            elif field == "name":
                problems.append(f"name {known.get('name')!r}: use lowercase letters, digits and hyphens, "
                                f"starting with a letter, under 50 characters")
            elif field == "region":
                problems.append(f"region {known.get('region')!r} is not a Google Cloud region name "
                                f"(like europe-west4)")
            else:
                problems.append(f"{field}: {err['msg']}")
        raise SpecError("; ".join(problems)) from None
    return spec.check()
