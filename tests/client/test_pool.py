"""The client pool: one client per backend for the life of a dashboard process, one ID token per audience,
everything closed on shutdown. Against the real local model server and a Cloud Run-style service that only
answers callers holding a Google ID token for it (real google-auth, loopback token endpoint)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lib.client import ClientPool, classify_sync
from lib.registry import Backend, read_models_toml
from lib.settings import load_settings
from testkit.cloudrun_fakes import ModelServers


def threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def gemma_on_cloud_run(model_servers: ModelServers, model: str = "pets-lora-7") -> Backend:
    return Backend(name=f"gemma/{model}", base_url=model_servers.url("gemma") + "/v1", model=model, family="vllm",
                   auth="google-id-token", role="tuned", tuned_from="gemma/google/gemma-3-4b-it",
                   service="gemma", source="cloud-run")


@pytest.mark.slow
def test_each_backend_keeps_one_client_across_calls(local_server: str, pets: Path) -> None:
    from urllib.parse import urlparse

    backends = read_models_toml(settings=load_settings({"LOCAL_MODELS_PORT": str(urlparse(local_server).port)}))
    photo = (pets / "pug_112.jpg").read_bytes()
    with ClientPool() as pool:
        first = pool.classify(backends, photo)
        kept = [pool.client(b) for b in backends]
        again = pool.classify(backends, photo)
        health = pool.health(backends)
        assert [pool.client(b) for b in backends] == kept and pool.size == 2
    assert [p.breed for p in first] == [p.breed for p in again] == ["pug", "pug"]
    assert [h.ok for h in health] == [True, True]


def test_an_id_token_is_fetched_once_per_audience_not_once_per_click(
    cloud_env: Path, model_servers: ModelServers,
) -> None:
    model_servers.answers["pets-lora-7"] = "Bengal"
    model_servers.adapters["gemma"] = ["pets-lora-7", "pets-lora-8"]
    backend, sibling = gemma_on_cloud_run(model_servers), gemma_on_cloud_run(model_servers, "pets-lora-8")
    image = _tiny_jpeg()
    with ClientPool() as pool:
        for _ in range(3):  # three clicks on Classify
            assert [p.breed for p in pool.classify([backend], image)] == ["Bengal"]
        assert all(h.ok for h in pool.health([backend, sibling]))  # two health probes, one audience
        assert pool.classify([sibling], image)[0].ok
    assert model_servers.token_requests == 1  # the service URL is the audience: both adapters share it
    assert model_servers.chats == [("gemma", "pets-lora-7")] * 3 + [("gemma", "pets-lora-8")]

    # What every click cost before the pool: a new client, a new token, a new thread pool.
    for _ in range(2):
        assert classify_sync([backend], image)[0].ok
    assert model_servers.token_requests == 3


def test_closing_the_pool_closes_its_clients_and_threads(cloud_env: Path, model_servers: ModelServers) -> None:
    pool = ClientPool()
    assert pool.classify([gemma_on_cloud_run(model_servers)], _tiny_jpeg())[0].ok
    assert threads("client-pool") and threads("id-token")
    pool.close()
    pool.close()  # twice is fine (atexit and the cache both call it)
    assert not threads("client-pool") and not threads("id-token")
    with pytest.raises(RuntimeError, match="closed"):
        pool.classify([gemma_on_cloud_run(model_servers)], _tiny_jpeg())


def test_a_backend_without_credentials_is_an_answer_with_an_error(
    cloud_env: Path, model_servers: ModelServers, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    with ClientPool() as pool:
        [answer] = pool.classify([gemma_on_cloud_run(model_servers)], _tiny_jpeg())
    assert not answer.ok and answer.error_kind == "client" and "DefaultCredentialsError" in (answer.error or "")


def _tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 150, 100)).save(buffer, "JPEG")
    return buffer.getvalue()
