"""Cloud Monitoring through the production client against a local MetricService; `/metrics` scraping."""

from __future__ import annotations

import math
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from lib.errors import UserError
from lib.monitoring import (
    MonitoringError,
    Scrape,
    billable_instance_seconds,
    bucket_bounds,
    distribution_percentile,
    find_gpu_metrics,
    local_metrics,
    make_client,
    pick_gpu_utilization,
    scrape,
    service_metrics,
)
from lib.settings import load_settings


def test_service_metrics_split_instances_by_state_and_sum_revisions(fake_monitoring):
    m = service_metrics(make_client(load_settings()), "demo", "gemma", now_s=fake_monitoring.now)
    assert {s: [p.value for p in pts] for s, pts in m.instances_by_state.items()} == {
        "active": [1, 2, 4],  # revision r2 adds one active instance in the last minute
        "idle": [1, 1, 0],
    }
    assert [round(p.value, 3) for p in m.request_rate_rps] == [10.0, 21.0]  # 600/60, (1200+60)/60
    assert [p.value for p in m.latency_ms["p50"]] == [96.0]  # 100 requests in the 64..128 ms bucket
    assert m.latency_ms["p99"][0].value == pytest.approx(64 + 64 * 0.99)
    assert m.gpu_metric == fake_monitoring.gpu and [p.value for p in m.gpu_utilization] == [
        pytest.approx(0.7)
    ]
    assert m.newest_point_age_s == 60.0  # Cloud Monitoring lags: the page shows this


def test_the_client_asks_for_the_service_and_discovers_the_gpu_metric(fake_monitoring):
    service_metrics(make_client(load_settings()), "demo", "gemma", now_s=fake_monitoring.now)
    filters = [r.filter for kind, r in fake_monitoring.requests if kind == "ListTimeSeries"]
    assert all('resource.labels.service_name = "gemma"' in f for f in filters)
    assert any('metric.type = "run.googleapis.com/container/instance_count"' in f for f in filters)
    assert any(f'metric.type = "{fake_monitoring.gpu}"' in f for f in filters)
    descriptor_filters = [r.filter for kind, r in fake_monitoring.requests if kind == "ListMetricDescriptors"]
    assert descriptor_filters == ['metric.type = starts_with("run.googleapis.com/container/gpu")']


def test_gpu_metric_picked_from_descriptors_is_compute_not_memory(fake_monitoring):
    found = find_gpu_metrics(make_client(load_settings()), "demo")
    assert {m.type for m in found} == {
        fake_monitoring.gpu,
        "run.googleapis.com/container/gpu/memory_utilizations",
    }
    assert pick_gpu_utilization(found).type == fake_monitoring.gpu


def test_a_service_without_points_says_so(fake_monitoring):
    fake_monitoring.descriptors.clear()
    m = service_metrics(make_client(load_settings()), "demo", "cpu-only", now_s=fake_monitoring.now)
    assert m.instances_by_state == {} and m.newest_point_age_s is None and m.gpu_metric is None
    assert any("no GPU utilisation metric" in n for n in m.notes)
    assert any("minute or more" in n for n in m.notes)


def test_billable_instance_time_sums_the_window(fake_monitoring):
    assert (
        billable_instance_seconds(
            make_client(load_settings()), "demo", "gemma", fake_monitoring.now - 600, fake_monitoring.now
        )
        == 105.0
    )


def test_permission_denied_is_a_clear_message(fake_monitoring):
    with pytest.raises(MonitoringError, match="roles/monitoring.viewer"):
        service_metrics(make_client(load_settings()), "no-access", "gemma", now_s=fake_monitoring.now)


def test_no_project_and_non_loopback_endpoints_are_refused(monkeypatch):
    with pytest.raises(MonitoringError, match="GOOGLE_CLOUD_PROJECT"):
        service_metrics(object(), "", "gemma")
    monkeypatch.setenv("MONITORING_API_ENDPOINT", "monitoring.googleapis.com:443")
    with pytest.raises(UserError, match="loopback"):
        make_client(load_settings())


@pytest.mark.parametrize(
    "counts, q, expected",
    [
        ([0, 10, 0, 0], 50, 1.5),  # linear 1..2 bucket, halfway
        ([0, 0, 0, 4], 99, 3.0),  # all in overflow: its lower edge
        ([5, 0, 0, 0], 50, 0.5),  # underflow spans 0..first edge
        ([0, 0, 0, 0], 50, None),
    ],
)
def test_distribution_percentiles(counts, q, expected):
    from google.api import distribution_pb2

    opts = distribution_pb2.Distribution.BucketOptions()
    opts.linear_buckets.num_finite_buckets, opts.linear_buckets.width, opts.linear_buckets.offset = (
        2,
        1.0,
        1.0,
    )
    bounds = bucket_bounds(opts, 4)
    assert bounds == [(-math.inf, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, math.inf)]
    assert distribution_percentile(bounds, counts, q) == expected


def test_local_metrics_from_two_scrapes_of_a_real_prometheus_endpoint():
    registry = CollectorRegistry()
    latency = Histogram(
        "vllm:e2e_request_latency_seconds",
        "latency",
        ["model_name"],
        registry=registry,
        buckets=(0.01, 0.02, 0.05, 0.1),
    )
    success = Counter("vllm:request_success", "ok", ["model_name"], registry=registry)
    errors = Counter("pets:request_errors", "errors", ["model_name", "code"], registry=registry)
    running = Gauge("vllm:num_requests_running", "running", ["model_name"], registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        success.labels("pets-tuned").inc(5)
        latency.labels("pets-tuned").observe(0.5)
        first = scrape(url)
        time.sleep(0.2)
        for _ in range(10):
            success.labels("pets-tuned").inc()
            latency.labels("pets-tuned").observe(0.015)  # the 10..20 ms bucket
        errors.labels("pets-tuned", "400").inc(2)
        running.labels("pets-tuned").set(3)
        second = scrape(url)
        m = local_metrics(first, second)
        dt = second.t_unix_s - first.t_unix_s
        assert m.request_rate_rps == pytest.approx(10 / dt) and m.error_rate_rps == pytest.approx(2 / dt)
        assert m.latency_p50_ms == pytest.approx(15.0) and m.running == 3
    finally:
        server.shutdown()
        server.server_close()


def test_local_metrics_of_a_server_that_has_answered_nothing_yet():
    m = local_metrics(Scrape(100.0), Scrape(101.0))  # no samples at all: not even a latency histogram
    assert (m.request_rate_rps, m.error_rate_rps, m.running, m.waiting) == (0.0, 0.0, 0.0, 0.0)
    assert (m.latency_p50_ms, m.latency_p95_ms, m.latency_p99_ms) == (None, None, None)


def test_scraping_a_dead_or_wrong_endpoint_is_a_clear_error():
    with pytest.raises(MonitoringError, match="cannot read"):
        scrape("http://127.0.0.1:9/metrics", timeout_s=1)
