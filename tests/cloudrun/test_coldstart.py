"""Cold start against a local service that answers 503 for ~2 s before it is ready."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lib.cli import main
from lib.client import RetryPolicy
from lib.cloudrun import ColdStartResult, load_cold_starts, measure_cold_start, save_cold_start
from lib.errors import UserError
from lib.registry import Backend
from lib.settings import load_settings
from testkit.cloudrun_fakes import ModelServers, fake_id_token

FAST_RETRY = RetryPolicy(deadline_s=20, max_attempts=100, backoff_initial_s=0.2, backoff_max_s=0.5)


def photo() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 150, 100)).save(buffer, "JPEG")
    return buffer.getvalue()


async def token(audience: str) -> str:
    return fake_id_token(audience)


@pytest.mark.slow
async def test_cold_then_warm_request_is_timed_through_the_503s(
    model_servers: ModelServers, cloud_env: Path,
) -> None:
    model_servers.cold_until["gemma"] = time.monotonic() + 2.0
    backend = Backend(name="gemma/pets", base_url=model_servers.url("gemma") + "/v1", model="pets-lora",
                      family="vllm", auth="google-id-token", source="cloud-run")
    result = await measure_cold_start(backend, None, photo(), retry=FAST_RETRY, token_provider=token)
    assert result.ok and result.answer == "Abyssinian"
    assert result.cold_attempts > 2  # the 503s were retried
    assert 1900 <= result.cold_ttfb_ms <= result.cold_total_ms  # type: ignore[operator]
    assert result.warm_total_ms is not None
    assert result.warm_ttfb_ms is not None and result.warm_ttfb_ms <= result.warm_total_ms

    path = save_cold_start(result)
    assert Path(path).parent == Path(load_settings().results_root) / "coldstart"
    assert load_cold_starts() == [result]


def cold_start(backend: str, measured_at: str, cold_total_ms: float) -> ColdStartResult:
    return ColdStartResult(backend=backend, base_url="https://svc-1.run.app/v1", model="m", measured_at=measured_at,
                           cold_ttfb_ms=cold_total_ms - 5, cold_total_ms=cold_total_ms, cold_attempts=7,
                           warm_ttfb_ms=30.0, warm_total_ms=45.0, answer="Abyssinian")


def test_results_are_stored_one_per_run_id_and_listed_newest_first(results_root: Path) -> None:
    older = cold_start("svc-1/m", "2026-11-28T10:15:00+00:00", 41_000.0)
    newer = cold_start("svc-1/m", "2026-11-28T10:15:00+00:00", 39_000.0)  # the same second: no clash
    newest = cold_start("svc-2/m", "2026-11-29T08:00:00+00:00", 12_000.0)
    paths = [save_cold_start(r) for r in (older, newer, newest)]
    assert len(set(paths)) == 3 and all(Path(p).name.startswith("2026112") for p in paths)
    stored = load_cold_starts()
    assert stored[0] == newest and sorted(stored[1:], key=lambda r: r.cold_total_ms) == [newer, older]
    (results_root / "coldstart" / "notes.txt").write_text("not ours")
    (results_root / "coldstart" / "broken.json").write_text("{")
    assert len(load_cold_starts()) == 3


def test_a_fresh_results_root_has_no_cold_starts_yet(results_root: Path) -> None:
    assert load_cold_starts() == [] and not results_root.exists()


@pytest.mark.slow
def test_a_result_saved_to_a_bucket_is_listed_back(gcs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_ROOT", "gs://pets-results/hosted")
    result = cold_start("svc-1/m", "2026-11-28T10:15:00+00:00", 41_000.0)
    url = save_cold_start(result)
    assert url.startswith("gs://pets-results/hosted/coldstart/20261128T101500Z-svc-1-m-") and url.endswith(".json")
    assert load_cold_starts() == [result]


@pytest.mark.slow
def test_a_missing_bucket_is_named_when_saving_and_listing(gcs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_ROOT", "gs://no-such-bucket/hosted")
    for call in (lambda: save_cold_start(cold_start("svc-1/m", "2026-11-28T10:15:00+00:00", 1.0)), load_cold_starts):
        with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
            call()


async def test_a_service_that_never_becomes_ready_is_reported_not_raised(model_servers: ModelServers) -> None:
    model_servers.public.add("stuck")
    model_servers.cold_until["stuck"] = time.monotonic() + 60
    short = RetryPolicy(deadline_s=1.0, max_attempts=20, backoff_initial_s=0.1, backoff_max_s=0.2)
    result = await measure_cold_start(model_servers.url("stuck"), "m", photo(), retry=short)
    assert not result.ok and "cold-starting (503)" in (result.error or "")
    assert result.cold_ttfb_ms is None and result.warm_total_ms is None


async def test_a_url_needs_a_model_name(model_servers: ModelServers) -> None:
    with pytest.raises(ValueError, match="needs the model name"):
        await measure_cold_start(model_servers.url("x"), None, photo())


def test_coldstart_command_stores_the_result(
    cloud_env: Path, model_servers: ModelServers, capsys: pytest.CaptureFixture,
) -> None:
    model_servers.public.add("local")
    image = cloud_env / "cat.jpg"
    image.write_bytes(photo())
    assert main(["coldstart", model_servers.url("local"), "--model", "pets-base", "--image", str(image)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["answer"] == "Abyssinian" and Path(result["saved_to"]).exists()
    assert main(["coldstart", model_servers.url("local")]) == 2
    assert "a URL needs --model" in capsys.readouterr().err
