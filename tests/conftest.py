"""Shared fixtures: the pet photos, a temp results root, a Cloud Storage emulator, and the real local model
server on a free port."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import fsspec
import pytest

from lib.local import start_local_server
from testkit import REPO, free_port, pets_dir  # noqa: F401  (re-exported for fixtures)
from testkit.gcs import fake_gcs


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


@pytest.fixture()
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[fsspec.AbstractFileSystem]:
    """A real Cloud Storage JSON API (fake-gcs-server) on loopback with bucket `pets-results`; gcsfs points at it."""
    with fake_gcs(monkeypatch) as fs:
        yield fs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API holds an event loop on the main thread for the session,
    and asyncio.run() in any test after it would fail."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace("\\", "/"))
