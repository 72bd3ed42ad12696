"""Cold start against a local service that answers 503 for ~2 s before it is ready."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from testkit.cloudrun_fakes import ModelServers, fake_id_token

from lib.client import RetryPolicy
from lib.cli import main
from lib.cloudrun.coldstart import load_results, measure_cold_start, save_result
from lib.registry import Backend
from lib.settings import load_settings

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
    assert result.warm_total_ms is not None and result.warm_total_ms < 1000
    assert result.warm_ttfb_ms is not None and result.warm_ttfb_ms <= result.warm_total_ms

    path = save_result(result)
    assert Path(path).parent == Path(load_settings().results_root) / "coldstart"
    assert load_results() == [result]


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
