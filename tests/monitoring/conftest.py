"""A local Cloud Monitoring API: a gRPC server speaking google.monitoring.v3.MetricService's real messages.

It serves ListTimeSeries (filtered by metric type, service name and interval, as the real API does)
and ListMetricDescriptors (filtered by a `starts_with` prefix), and answers PERMISSION_DENIED for the
project "no-access". Tests point the production `MetricServiceClient` at it via MONITORING_API_ENDPOINT.
"""

from __future__ import annotations

import re
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from google.api import distribution_pb2, label_pb2, metric_pb2
from google.cloud.monitoring_v3.types import metric as ts_types
from google.cloud.monitoring_v3.types import metric_service
from google.protobuf import timestamp_pb2

TimeSeries = ts_types.TimeSeries.pb()  # the real protobuf message class behind the proto-plus type

NOW = 1_800_000_000.0  # a fixed "now" for every test
GPU = "run.googleapis.com/container/gpu/utilizations"
GPU_MEMORY = "run.googleapis.com/container/gpu/memory_utilizations"


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(seconds))


def series(
    metric_type: str,
    service: str,
    points: list[tuple[float, float, object]],
    *,
    kind: str,
    value_type: str,
    labels: dict[str, str] | None = None,
    revision: str = "r1",
) -> TimeSeries:
    """A TimeSeries on a cloud_run_revision; points are (start, end, value), newest first like the API."""
    out = TimeSeries(
        metric=metric_pb2.Metric(type=metric_type, labels=labels or {}),
        metric_kind=metric_pb2.MetricDescriptor.MetricKind.Value(kind),
        value_type=metric_pb2.MetricDescriptor.ValueType.Value(value_type),
    )
    out.resource.type = "cloud_run_revision"
    out.resource.labels.update(
        {
            "service_name": service,
            "revision_name": f"{service}-{revision}",
            "location": "europe-west4",
            "project_id": "demo",
        }
    )
    for start, end, value in sorted(points, key=lambda p: -p[1]):
        p = out.points.add()
        p.interval.start_time.CopyFrom(ts(start))
        p.interval.end_time.CopyFrom(ts(end))
        if isinstance(value, distribution_pb2.Distribution):
            p.value.distribution_value.CopyFrom(value)
        elif value_type == "INT64":
            p.value.int64_value = int(value)
        else:
            p.value.double_value = float(value)
    return out


def latency_distribution(bucket: int, count: int) -> distribution_pb2.Distribution:
    """All `count` requests in exponential bucket `bucket` (scale 1, growth 2: bucket 7 is 64..128 ms)."""
    d = distribution_pb2.Distribution(count=count, mean=96.0)
    d.bucket_options.exponential_buckets.num_finite_buckets = 10
    d.bucket_options.exponential_buckets.growth_factor = 2.0
    d.bucket_options.exponential_buckets.scale = 1.0
    counts = [0] * 12
    counts[bucket] = count
    d.bucket_counts.extend(counts)
    return d


@dataclass
class FakeMonitoring:
    """The data and the requests seen; tests read `requests` to check what the client asked."""

    series: list[TimeSeries] = field(default_factory=list)
    descriptors: list[metric_pb2.MetricDescriptor] = field(default_factory=list)
    requests: list[tuple[str, object]] = field(default_factory=list)
    now: float = NOW
    gpu: str = GPU

    def list_time_series(self, request: metric_service.ListTimeSeriesRequest, context: grpc.ServicerContext):
        self.requests.append(("ListTimeSeries", request))
        self._check_project(request.name, context)
        wanted = re.search(r'metric\.type\s*=\s*"([^"]+)"', request.filter)
        service = re.search(r'resource\.labels\.service_name\s*=\s*"([^"]+)"', request.filter)
        if not wanted:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "filter must name a metric.type")
        start, end = request.interval.start_time.timestamp(), request.interval.end_time.timestamp()
        out = metric_service.ListTimeSeriesResponse()
        for s in self.series:
            if s.metric.type != wanted.group(1):
                continue
            if service and s.resource.labels["service_name"] != service.group(1):
                continue
            kept = TimeSeries()
            kept.CopyFrom(s)
            del kept.points[:]
            kept.points.extend(p for p in s.points if start < p.interval.end_time.seconds <= end)
            if kept.points:
                out._pb.time_series.append(kept)
        return out

    def list_metric_descriptors(
        self, request: metric_service.ListMetricDescriptorsRequest, context: grpc.ServicerContext
    ):
        self.requests.append(("ListMetricDescriptors", request))
        self._check_project(request.name, context)
        prefix = re.search(r'starts_with\("([^"]+)"\)', request.filter)
        out = metric_service.ListMetricDescriptorsResponse()
        out._pb.metric_descriptors.extend(
            d for d in self.descriptors if not prefix or d.type.startswith(prefix.group(1))
        )
        return out

    @staticmethod
    def _check_project(name: str, context: grpc.ServicerContext) -> None:
        if name == "projects/no-access":
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
            )


def demo_data(fake: FakeMonitoring, now: float = NOW) -> None:
    """A GPU service `gemma` over the three minutes before `now`; `cpu-only` has no GPU data."""
    fake.now = now
    t1, t2, t3 = now - 180, now - 120, now - 60
    fake.series += [
        series(
            "run.googleapis.com/container/instance_count",
            "gemma",
            [(t1, t1, 1), (t2, t2, 2), (t3, t3, 3)],
            kind="GAUGE",
            value_type="INT64",
            labels={"state": "active"},
        ),
        series(
            "run.googleapis.com/container/instance_count",
            "gemma",
            [(t1, t1, 1), (t2, t2, 1), (t3, t3, 0)],
            kind="GAUGE",
            value_type="INT64",
            labels={"state": "idle"},
        ),
        series(
            "run.googleapis.com/container/instance_count",
            "gemma",
            [(t3, t3, 1)],
            kind="GAUGE",
            value_type="INT64",
            labels={"state": "active"},
            revision="r2",
        ),
        series(
            "run.googleapis.com/container/instance_count",
            "other",
            [(t3, t3, 9)],
            kind="GAUGE",
            value_type="INT64",
            labels={"state": "active"},
        ),
        series(
            "run.googleapis.com/request_count",
            "gemma",
            [(t2 - 60, t2, 600), (t2, t3, 1200)],
            kind="DELTA",
            value_type="INT64",
            labels={"response_code_class": "2xx"},
        ),
        series(
            "run.googleapis.com/request_count",
            "gemma",
            [(t2, t3, 60)],
            kind="DELTA",
            value_type="INT64",
            labels={"response_code_class": "5xx"},
        ),
        series(
            "run.googleapis.com/request_latencies",
            "gemma",
            [(t2, t3, latency_distribution(7, 60))],
            kind="DELTA",
            value_type="DISTRIBUTION",
            labels={"response_code_class": "2xx"},
        ),
        series(
            "run.googleapis.com/request_latencies",
            "gemma",
            [(t2, t3, latency_distribution(7, 40))],
            kind="DELTA",
            value_type="DISTRIBUTION",
            labels={"response_code_class": "2xx"},
            revision="r2",
        ),
        series(GPU, "gemma", [(t3, t3, 0.6)], kind="GAUGE", value_type="DOUBLE"),
        series(GPU, "gemma", [(t3, t3, 0.8)], kind="GAUGE", value_type="DOUBLE", revision="r2"),
        series(GPU_MEMORY, "gemma", [(t3, t3, 0.95)], kind="GAUGE", value_type="DOUBLE"),
        series(
            "run.googleapis.com/container/billable_instance_time",
            "gemma",
            [(t1 - 60, t1, 45.0), (t1, t2, 60.0), (now - 7200, now - 7140, 999.0)],
            kind="DELTA",
            value_type="DOUBLE",
        ),
    ]
    for metric_type, unit, text in (
        (GPU, "10^2.%", "GPU utilization of the container instance"),
        (GPU_MEMORY, "10^2.%", "GPU memory utilization"),
    ):
        fake.descriptors.append(
            metric_pb2.MetricDescriptor(
                name=f"projects/demo/metricDescriptors/{metric_type}",
                type=metric_type,
                unit=unit,
                description=text,
                metric_kind=metric_pb2.MetricDescriptor.MetricKind.GAUGE,
                value_type=metric_pb2.MetricDescriptor.ValueType.DOUBLE,
                labels=[label_pb2.LabelDescriptor(key="accelerator_type")],
            )
        )


@pytest.fixture()
def fake_monitoring(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeMonitoring:
    """Start the gRPC server on a free loopback port and point MONITORING_API_ENDPOINT at it.

    Data is dated before a fixed NOW, or before the present with `@pytest.mark.parametrize(..., indirect)`
    passing "present"."""
    fake = FakeMonitoring()
    demo_data(fake, time.time() if getattr(request, "param", None) == "present" else NOW)
    handler = grpc.method_handlers_generic_handler(
        "google.monitoring.v3.MetricService",
        {
            "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                fake.list_time_series,
                request_deserializer=metric_service.ListTimeSeriesRequest.deserialize,
                response_serializer=metric_service.ListTimeSeriesResponse.serialize,
            ),
            "ListMetricDescriptors": grpc.unary_unary_rpc_method_handler(
                fake.list_metric_descriptors,
                request_deserializer=metric_service.ListMetricDescriptorsRequest.deserialize,
                response_serializer=metric_service.ListMetricDescriptorsResponse.serialize,
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("MONITORING_API_ENDPOINT", f"127.0.0.1:{port}")
    try:
        yield fake
    finally:
        server.stop(grace=None)
