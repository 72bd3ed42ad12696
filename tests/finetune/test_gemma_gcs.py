"""The Gemma trainer writing to `gs://` through gcsfs, against a local fake-gcs-server (real JSON API)."""

from __future__ import annotations

import json

import pytest

from lib.errors import UserError
from lib.finetune import GemmaTrainConfig, output_store, scan_checkpoints, train_gemma


@pytest.mark.slow
def test_run_to_a_bucket_uploads_checkpoints_and_outputs(gcs, train_config: GemmaTrainConfig):
    cfg = train_config.model_copy(update={"out": "gs://pets-results/runs/r1", "max_steps": 2, "save_steps": 1})
    result = train_gemma(cfg)
    assert result.adapter == "gs://pets-results/runs/r1/adapter"
    assert gcs.exists("pets-results/runs/r1/adapter/adapter_model.safetensors")
    metrics = json.loads(gcs.cat_file("pets-results/runs/r1/metrics.json"))
    assert metrics["steps"] == 2
    assert "--lora-modules pets-gemma=/gcs/pets-results/runs/r1/adapter" in metrics["serve_command"]
    complete, torn = scan_checkpoints(output_store(cfg.out))
    assert [c.step for c in complete] == [1, 2] and torn == []

    resumed = train_gemma(cfg.model_copy(update={"max_steps": 3, "task_attempt": 1}))
    assert resumed.resumed_from_step == 2 and resumed.steps == 3


@pytest.mark.slow
def test_missing_bucket_is_a_user_error(gcs, train_config: GemmaTrainConfig):
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        train_gemma(train_config.model_copy(update={"out": "gs://no-such-bucket/run"}))
