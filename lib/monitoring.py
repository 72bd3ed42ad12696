"""Server-side time series for the Live page: Cloud Monitoring for Cloud Run, `/metrics` for local backends.

Cloud Monitoring (`google.cloud.monitoring_v3`): instance count by state, request rate, request
latency percentiles (merged from the distributions' buckets) and GPU utilisation, whose metric type
is discovered from the metric descriptors rather than assumed. Points lag by a minute or more, so
every answer says how old its newest point is. Local backends: Prometheus text from `/metrics`.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import httpx

from lib.errors import UserError
from lib.settings import Settings, load_settings

__all__ = [
    "Point",
    "ServiceMetrics",
    "GpuMetric",
    "MonitoringError",
    "make_client",
    "find_gpu_metrics",
    "service_metrics",
    "billable_instance_seconds",
    "distribution_percentile",
    "Scrape",
    "LocalMetrics",
    "scrape",
    "local_metrics",
    "INSTANCE_COUNT",
    "REQUEST_COUNT",
    "REQUEST_LATENCIES",
    "BILLABLE_TIME",
    "GPU_PREFIX",
]

INSTANCE_COUNT = "run.googleapis.com/container/instance_count"  # GAUGE INT64, metric label `state`
REQUEST_COUNT = "run.googleapis.com/request_count"  # DELTA INT64
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"  # DELTA DISTRIBUTION, milliseconds
BILLABLE_TIME = "run.googleapis.com/container/billable_instance_time"  # DELTA DOUBLE, seconds
GPU_PREFIX = "run.googleapis.com/container/gpu"


class MonitoringError(UserError):
    """Cloud Monitoring refused or failed; the message says what to do."""


@dataclass(frozen=True)
class Point:
    """One value at the end of its interval (Unix seconds)."""

    t_unix_s: float
    value: float


@dataclass(frozen=True)
class GpuMetric:
    """A GPU metric descriptor found by listing, not assumed."""

    type: str
    metric_kind: str
    value_type: str
    unit: str
    description: str


@dataclass(frozen=True)
class ServiceMetrics:
    """The last minutes of one Cloud Run service, plus how stale the newest point is."""

    service: str
    instances_by_state: dict[str, list[Point]]
    request_rate_rps: list[Point]
    latency_ms: dict[str, list[Point]]  # "p50", "p95", "p99" -> points
    gpu_metric: str | None
    gpu_utilization: list[Point]  # mean across instances, 0..1
    newest_point_age_s: float | None
    notes: tuple[str, ...] = ()


def make_client(settings: Settings | None = None) -> Any:
    """A `MetricServiceClient`: Google with ambient credentials, or MONITORING_API_ENDPOINT (insecure)."""
    from google.cloud import monitoring_v3

    settings = settings or load_settings()
    endpoint = settings.monitoring_api_endpoint
    if endpoint:
        import grpc
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

        if not endpoint.startswith(("127.0.0.1:", "localhost:", "[::1]:")):
            raise UserError(f"MONITORING_API_ENDPOINT={endpoint!r}: only a loopback test server is allowed")
        return monitoring_v3.MetricServiceClient(
            transport=MetricServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
        )
    try:
        return monitoring_v3.MetricServiceClient()
    except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
        raise MonitoringError(
            f"no Google Cloud credentials for Cloud Monitoring ({exc}); "
            "run `gcloud auth application-default login`"
        ) from None


def _call(what: str, project: str, fn: Any, *args: Any, **kwargs: Any) -> list[Any]:
    from google.api_core import exceptions as gexc

    try:
        return list(fn(*args, **kwargs))
    except gexc.PermissionDenied:
        raise MonitoringError(
            f"Cloud Monitoring denied {what} on project {project!r}: the account needs "
            f"roles/monitoring.viewer (monitoring.timeSeries.list) there"
        ) from None
    except gexc.NotFound:
        raise MonitoringError(
            f"project {project!r} not found by Cloud Monitoring; check GOOGLE_CLOUD_PROJECT"
        ) from None
    except gexc.GoogleAPICallError as exc:
        raise MonitoringError(f"Cloud Monitoring {what} failed: {exc.message or exc}") from None


def find_gpu_metrics(client: Any, project: str) -> list[GpuMetric]:
    """GPU metric descriptors for Cloud Run containers, listed with a prefix filter."""
    request = {"name": f"projects/{project}", "filter": f'metric.type = starts_with("{GPU_PREFIX}")'}
    found = _call("listing metric descriptors", project, client.list_metric_descriptors, request=request)
    from google.api import metric_pb2

    def name(enum: Any, value: Any) -> str:  # a proto-plus enum or the raw protobuf int
        return value.name if hasattr(value, "name") else enum.Name(value)

    kinds, values = metric_pb2.MetricDescriptor.MetricKind, metric_pb2.MetricDescriptor.ValueType
    return [
        GpuMetric(d.type, name(kinds, d.metric_kind), name(values, d.value_type), d.unit, d.description)
        for d in found
    ]


def pick_gpu_utilization(metrics: Iterable[GpuMetric]) -> GpuMetric | None:
    """The GPU compute utilisation metric among the descriptors (not memory utilisation)."""
    candidates = [m for m in metrics if "utilization" in m.type and "memory" not in m.type]
    return sorted(candidates, key=lambda m: len(m.type))[0] if candidates else None


def _series(
    client: Any, project: str, metric_type: str, service: str, start_s: float, end_s: float
) -> list[Any]:
    from google.cloud import monitoring_v3

    interval = monitoring_v3.TimeInterval(
        start_time={"seconds": int(start_s)}, end_time={"seconds": int(math.ceil(end_s))}
    )
    request = monitoring_v3.ListTimeSeriesRequest(
        name=f"projects/{project}",
        filter=(
            f'metric.type = "{metric_type}" AND resource.type = "cloud_run_revision" '
            f'AND resource.labels.service_name = "{service}"'
        ),
        interval=interval,
        view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
    )
    return _call(f"reading {metric_type}", project, client.list_time_series, request=request)


def _end_s(point: Any) -> float:
    return point.interval.end_time.timestamp()


def _number(value: Any) -> float:
    kind = value._pb.WhichOneof("value")
    if kind == "int64_value":
        return float(value.int64_value)
    if kind == "double_value":
        return float(value.double_value)
    if kind == "distribution_value":
        return float(value.distribution_value.mean)
    return float("nan")


def _sum_by_time(series: Iterable[Any]) -> dict[float, float]:
    totals: dict[float, float] = {}
    for s in series:
        for p in s.points:
            t = _end_s(p)
            totals[t] = totals.get(t, 0.0) + _number(p.value)
    return totals


def _points(by_time: dict[float, float]) -> list[Point]:
    return [Point(t, v) for t, v in sorted(by_time.items())]


def bucket_bounds(options: Any, n_buckets: int) -> list[tuple[float, float]]:
    """(lower, upper) of each bucket of a Distribution, underflow and overflow included."""
    pb = options._pb if hasattr(options, "_pb") else options
    which = pb.WhichOneof("options")
    if which == "linear_buckets":
        lb = pb.linear_buckets
        edges = [lb.offset + lb.width * i for i in range(lb.num_finite_buckets + 1)]
    elif which == "exponential_buckets":
        eb = pb.exponential_buckets
        edges = [eb.scale * eb.growth_factor**i for i in range(eb.num_finite_buckets + 1)]
    elif which == "explicit_buckets":
        edges = list(pb.explicit_buckets.bounds)
    else:
        edges = []
    bounds = [(-math.inf, edges[0] if edges else math.inf)]
    bounds += list(itertools.pairwise(edges))
    bounds.append((edges[-1] if edges else math.inf, math.inf))
    return bounds[: max(n_buckets, 1)] if n_buckets else bounds


def distribution_percentile(bounds: list[tuple[float, float]], counts: list[int], q: float) -> float | None:
    """The q-th percentile (0-100) of bucketed counts, interpolating linearly inside the bucket."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q / 100 * total
    seen = 0.0
    for (lo, hi), c in zip(bounds, counts, strict=False):  # counts past the described buckets are ignored
        if c and seen + c >= rank:
            lo = 0.0 if lo == -math.inf else lo
            if hi == math.inf:
                return lo
            return lo + (hi - lo) * (rank - seen) / c
        seen += c
    return bounds[-1][0]


def _latency_percentiles(series: Iterable[Any]) -> dict[str, list[Point]]:
    """Merge every series' distribution per timestamp (same bucket layout), then take percentiles."""
    merged: dict[float, tuple[list[tuple[float, float]], list[int]]] = {}
    for s in series:
        for p in s.points:
            d = p.value.distribution_value
            counts = list(d.bucket_counts)
            if not counts:
                continue
            t = _end_s(p)
            bounds = bucket_bounds(d.bucket_options, len(counts))
            if t in merged and len(merged[t][1]) == len(counts):
                old = merged[t][1]
                merged[t] = (bounds, [a + b for a, b in zip(old, counts, strict=True)])
            else:
                merged[t] = (bounds, counts)
    out: dict[str, list[Point]] = {"p50": [], "p95": [], "p99": []}
    for t in sorted(merged):
        bounds, counts = merged[t]
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            v = distribution_percentile(bounds, counts, q)
            if v is not None:
                out[name].append(Point(t, v))
    return out


def service_metrics(
    client: Any, project: str, service: str, *, window_s: float = 900, now_s: float | None = None
) -> ServiceMetrics:
    """Instances by state, request rate, latency percentiles and GPU utilisation over the last `window_s`."""
    if not project:
        raise MonitoringError("set GOOGLE_CLOUD_PROJECT to read Cloud Monitoring")
    now_s = time.time() if now_s is None else now_s
    start = now_s - window_s
    notes: list[str] = []

    counts = _series(client, project, INSTANCE_COUNT, service, start, now_s)
    by_state: dict[str, list[Any]] = {}
    for s in counts:
        by_state.setdefault(s.metric.labels.get("state", "unknown"), []).append(s)
    instances = {state: _points(_sum_by_time(ss)) for state, ss in sorted(by_state.items())}

    rate: dict[float, float] = {}
    for s in _series(client, project, REQUEST_COUNT, service, start, now_s):
        for p in s.points:
            span = max(_end_s(p) - p.interval.start_time.timestamp(), 1.0)
            rate[_end_s(p)] = rate.get(_end_s(p), 0.0) + _number(p.value) / span
    latency = _latency_percentiles(_series(client, project, REQUEST_LATENCIES, service, start, now_s))

    gpu = pick_gpu_utilization(find_gpu_metrics(client, project))
    gpu_points: list[Point] = []
    if gpu is None:
        notes.append(f"no GPU utilisation metric under {GPU_PREFIX} in this project")
    else:
        per_time: dict[float, list[float]] = {}
        for s in _series(client, project, gpu.type, service, start, now_s):
            for p in s.points:
                per_time.setdefault(_end_s(p), []).append(_number(p.value))
        gpu_points = [Point(t, sum(v) / len(v)) for t, v in sorted(per_time.items())]

    newest = [pts[-1].t_unix_s for pts in [*instances.values(), _points(rate), latency["p50"], gpu_points] if pts]
    age = now_s - max(newest) if newest else None
    if age is None:
        notes.append(
            "no points yet: Cloud Monitoring shows Cloud Run metrics a minute or more after the fact"
        )
    return ServiceMetrics(
        service,
        instances,
        _points(rate),
        latency,
        None if gpu is None else gpu.type,
        gpu_points,
        None if age is None else round(age, 1),
        tuple(notes),
    )


def billable_instance_seconds(client: Any, project: str, service: str, start_s: float, end_s: float) -> float:
    """Billable container instance time (seconds) for a service between two Unix times."""
    series = _series(client, project, BILLABLE_TIME, service, start_s, end_s)
    return float(sum(_number(p.value) for s in series for p in s.points))


# --- local backends: Prometheus text from /metrics -------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """One read of a `/metrics` page: sample (name, sorted labels) -> value, at `t_unix_s`."""

    t_unix_s: float
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def total(self, name: str, **labels: str) -> float:
        """Sum of samples called `name` whose labels include `labels`."""
        return sum(v for (n, ls), v in self.samples.items() if n == name and set(labels.items()) <= set(ls))


def scrape(url: str, *, timeout_s: float = 3.0) -> Scrape:
    """Fetch and parse a Prometheus `/metrics` page; raises `MonitoringError` when it cannot."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = httpx.get(url, timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise MonitoringError(f"cannot read {url}: {exc}") from None
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    except ValueError as exc:
        raise MonitoringError(f"{url} is not Prometheus text: {exc}") from None
    return Scrape(time.time(), samples)


@dataclass(frozen=True)
class LocalMetrics:
    """What a local backend's server saw between two scrapes (vLLM metric names)."""

    t_unix_s: float
    request_rate_rps: float
    error_rate_rps: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    running: float
    waiting: float


def _histogram_delta(prev: Scrape, cur: Scrape, name: str) -> tuple[list[tuple[float, float]], list[int]]:
    def buckets(s: Scrape) -> dict[float, float]:
        out: dict[float, float] = {}
        for (n, labels), v in s.samples.items():
            if n == f"{name}_bucket":
                le = float(dict(labels)["le"])
                out[le] = out.get(le, 0.0) + v
        return out

    a, b = buckets(prev), buckets(cur)
    edges = sorted(b)
    cumulative = [b[e] - a.get(e, 0.0) for e in edges]
    counts = [int(round(c - (cumulative[i - 1] if i else 0.0))) for i, c in enumerate(cumulative)]
    return list(itertools.pairwise([0.0, *edges])), counts  # (low, high) per bucket; none until the server has one


def local_metrics(prev: Scrape, cur: Scrape) -> LocalMetrics:
    """Rates and latency percentiles between two scrapes of a local (or vLLM) server."""
    dt = max(cur.t_unix_s - prev.t_unix_s, 1e-6)
    ok = cur.total("vllm:request_success_total") - prev.total("vllm:request_success_total")
    errors = cur.total("pets:request_errors_total") - prev.total("pets:request_errors_total")
    bounds, counts = _histogram_delta(prev, cur, "vllm:e2e_request_latency_seconds")

    def pct(q: float) -> float | None:
        v = distribution_percentile(bounds, counts, q)
        return None if v is None or math.isinf(v) else v * 1000

    return LocalMetrics(
        cur.t_unix_s,
        max(ok, 0.0) / dt,
        max(errors, 0.0) / dt,
        pct(50),
        pct(95),
        pct(99),
        cur.total("vllm:num_requests_running"),
        cur.total("vllm:num_requests_waiting"),
    )
