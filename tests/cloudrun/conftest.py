"""Fixtures: a local Cloud Run Admin API (gRPC), local model services and token endpoint (HTTP),
and an environment that points every client at them (never at Google)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from testkit.cloudrun_fakes import PROJECT, REGIONS, FakeCloudRun, ModelServers, write_service_account

from lib.cloudrun.admin import Clients, make_clients
from lib.settings import load_settings



@pytest.fixture
def fake_run() -> Iterator[FakeCloudRun]:
    server = FakeCloudRun().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def model_servers() -> Iterator[ModelServers]:
    servers = ModelServers().start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def cloud_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_run: FakeCloudRun,
              model_servers: ModelServers) -> Path:
    """Environment for code under test: fake Admin API, service-account key with a loopback token_uri."""
    key = write_service_account(tmp_path / "sa.json", model_servers.token_uri)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # google-auth: never look for a metadata server
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("CLOUD_RUN_API_ENDPOINT", fake_run.endpoint)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("CLOUD_RUN_REGION", REGIONS[0])
    monkeypatch.setenv("CLOUD_RUN_REGIONS", ",".join(REGIONS))
    monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    return tmp_path


@pytest.fixture
def clients(cloud_env: Path) -> Clients:
    return make_clients(load_settings())
