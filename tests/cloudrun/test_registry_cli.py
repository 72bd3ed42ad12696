"""`--backend NAME` means the same backend in every command, whether models.toml or discovery found it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.cli import main
from testkit.cloudrun_fakes import FakeCloudRun, ModelServers, add_fleet
from testkit.evalkit import make_photos


@pytest.fixture
def fleet(cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers) -> ModelServers:
    add_fleet(fake_run, model_servers, 2, adapters=2)
    return model_servers


def last_json(capsys: pytest.CaptureFixture) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_asks_an_adapter_found_by_discovery(fleet: ModelServers, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    fleet.answers["pets-lora-001-1"] = "pug"
    photos = make_photos(tmp_path / "photos")  # 4 breeds x 5 photos
    code = main(["eval", "--backend", "svc-001/pets-lora-001-1", "--data", str(photos), "--split", "all",
                 "--out", str(tmp_path / "results"), "--quiet"])
    figures = last_json(capsys)
    assert code == 0 and (figures["n"], figures["correct"], figures["errors"]) == (20, 5, 0)
    assert figures["backend"] == "svc-001/pets-lora-001-1" and figures["model"] == "pets-lora-001-1"
    assert set(fleet.chats) == {("svc-001", "pets-lora-001-1")}  # with an ID token for svc-001 (else 403)


def test_loadgen_drives_a_discovered_base_model(fleet: ModelServers, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    code = main(["loadgen", "--backend", "svc-000/google/gemma-3-4b-it", "--text", "--mode", "constant",
                 "--rate", "10", "--duration", "1", "--out", str(tmp_path / "load.jsonl")])
    summary = last_json(capsys)
    assert code == 0 and summary["requests_sent"] == 10 and summary["requests_ok"] == 10
    assert set(fleet.chats) == {("svc-000", "google/gemma-3-4b-it")}


def test_a_name_nobody_serves_lists_the_closest_discovered_ones(fleet: ModelServers,
                                                                 capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "--backend", "svc-001/pets-lora-001-9"]) == 2
    err = capsys.readouterr().err
    assert "unknown backend 'svc-001/pets-lora-001-9'" in err and "did you mean: svc-001/pets-lora-001-" in err


def test_a_forbidden_service_is_named_when_its_backend_is_asked_for(
    fleet: ModelServers, capsys: pytest.CaptureFixture,
) -> None:
    fleet.behaviour["svc-000"] = "forbidden"
    assert main(["eval", "--backend", "svc-000/pets-lora-000-0"]) == 2
    err = capsys.readouterr().err
    assert "svc-000 (europe-west4): forbidden: HTTP 403" in err
