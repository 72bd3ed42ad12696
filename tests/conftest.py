"""Shared fixtures: the pet photos, a temp results root, a Cloud Storage emulator, the real local model
server on a free port, and the local stand-ins for Google (Cloud Run Admin API, model services behind ID tokens)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import fsspec
import pytest

from lib.cloudrun import Clients, make_clients
from lib.local import start_local_server
from lib.settings import load_settings
from testkit import REPO, free_port, pets_dir
from testkit.cloudrun_fakes import PROJECT, REGIONS, FakeCloudRun, ModelServers, write_service_account
from testkit.gcs import fake_gcs

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="pets-tests-"))
# Before any fixture or import reads it: the exported ONNX model and discovery caches of this session.
os.environ.setdefault("PETS_CACHE_DIR", str(_SESSION_TMP / "cache"))
_SKIP = {".git", ".venv", "__pycache__", ".ruff_cache", ".mypy_cache"}


def _checkout_files() -> dict[str, float]:
    files = {}
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _SKIP]
        for name in names:
            path = Path(root) / name
            files[str(path.relative_to(REPO))] = path.stat().st_mtime
    return files


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _checkout_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test writes into the checkout: a file made or changed there during the run fails the run."""
    before = session.config.stash.get(_BEFORE, None)
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    if before is None:
        return
    after = _checkout_files()
    touched = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    if touched:
        print(f"\nerror: tests wrote into the checkout: {', '.join(touched[:10])}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[dict]()


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test: results in a fresh temp folder, and Streamlit's caches empty (settings, registry, clients)."""
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path_factory.mktemp("results")))
    _clear_streamlit_caches()
    yield
    _clear_streamlit_caches()  # releases kept clients and any model server a page started


def _clear_streamlit_caches() -> None:
    if "streamlit" in sys.modules:  # a test that never imported it has nothing cached
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()


@pytest.fixture(scope="session")
def pets() -> Path:
    """The folder of labelled pet photos (skips if absent)."""
    folder = pets_dir()
    if not (folder / "manifest.csv").exists():
        pytest.skip(f"pet photos not found at {folder}; set PETS_DIR")
    return folder


@pytest.fixture(scope="session")
def local_server() -> str:
    """Base URL (`http://127.0.0.1:PORT/v1`) of a real local model server, shared by the session."""
    port = free_port()
    proc = start_local_server("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def results_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point RESULTS_ROOT at a fresh temp folder."""
    root = tmp_path / "results"
    monkeypatch.setenv("RESULTS_ROOT", str(root))
    return root


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


@pytest.fixture()
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[fsspec.AbstractFileSystem]:
    """A real Cloud Storage JSON API (fake-gcs-server) on loopback with bucket `pets-results`; gcsfs points at it."""
    with fake_gcs(monkeypatch) as fs:
        yield fs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API holds an event loop on the main thread for the session,
    and asyncio.run() in any test after it would fail."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace("\\", "/"))
