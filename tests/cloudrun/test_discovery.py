"""Discovery: list services through the local Admin API, probe `/v1/models` with real google-auth ID
tokens from a local token endpoint, turn models into backends, merge with models.toml, cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.cli import main
from lib.cloudrun import Clients, discover, discover_cached, to_backends
from lib.registry import Backend, filter_backends, group_by_server, load_backends, merge_backends, read_models_toml
from lib.settings import load_settings
from testkit.cloudrun_fakes import PROJECT, REGIONS, FakeCloudRun, ModelServers, add_fleet, fake_id_token


def test_probes_tell_healthy_slow_forbidden_and_non_openai_services_apart(
    clients: Clients, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 4)
    model_servers.behaviour.update({"svc-001": "slow", "svc-002": "forbidden", "svc-003": "nomodels"})
    model_servers.slow_s = 2.0
    found = {s.name: s for s in discover(PROJECT, REGIONS, clients=clients, timeout_s=0.5)}
    assert {n: s.health for n, s in found.items()} == {
        "svc-000": "ok", "svc-001": "timeout", "svc-002": "forbidden", "svc-003": "no-models-endpoint"}
    assert [m.id for m in found["svc-000"].models] == ["google/gemma-3-4b-it", "pets-lora-000-0", "pets-lora-000-1",
                                                      "pets-lora-000-2"]
    assert "roles/run.invoker" in (found["svc-002"].error or "")
    assert "no /v1/models (404)" in (found["svc-003"].error or "")
    assert "within 0.5 s" in (found["svc-001"].error or "")
    # one real google-auth JWT-bearer exchange per service URL (audience = URL; the server checks it)
    assert model_servers.token_requests == 4


def test_models_become_backends_grouped_by_base_model(
    clients: Clients, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 2)
    backends = to_backends(discover(PROJECT, REGIONS, clients=clients))
    assert len(backends) == 8
    base = next(b for b in backends if b.name == "svc-001/google/gemma-3-4b-it")
    adapter = next(b for b in backends if b.name == "svc-001/pets-lora-001-2")
    assert (base.role, base.base_model, base.family, base.auth, base.source, base.region) == (
        "base", "google/gemma-3-4b-it", "vllm", "google-id-token", "cloud-run", "us-central1")
    assert (adapter.role, adapter.tuned_from, adapter.base_model, adapter.model) == (
        "tuned", "svc-001/google/gemma-3-4b-it", "google/gemma-3-4b-it", "pets-lora-001-2")
    assert adapter.base_url == model_servers.url("svc-001") + "/v1" == base.base_url
    assert {b.group for b in backends} == {"google/gemma-3-4b-it"}
    assert {s: [b.name for b in m] for s, m in group_by_server(backends).items()}["svc-001"][0] == base.name


def test_models_toml_wins_on_name_clashes_and_says_so(cloud_env: Path) -> None:
    configured = read_models_toml()
    clash = Backend(name="pets-base", base_url="https://x.run.app/v1", model="other", source="cloud-run",
                    service="x")
    same_endpoint = Backend(name="another-name", base_url=configured[0].base_url, model=configured[0].model)
    new = Backend(name="svc/model", base_url="https://svc.run.app/v1", model="model", source="cloud-run")
    merged, problems = merge_backends(configured, [clash, same_endpoint, new])
    assert [b.name for b in merged] == [b.name for b in configured] + ["svc/model"]
    assert merged[0] == configured[0]
    # the same endpoint under another name is the same backend: dropped without a word
    assert len(problems) == 1 and problems[0].startswith("pets-base: the name is taken by models.toml")
    assert "model other on Cloud Run service x is left out" in problems[0]


def test_discovery_is_cached_until_it_is_old(
    cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 3)
    settings = load_settings()
    first = discover_cached(PROJECT, REGIONS, settings=settings)
    again = discover_cached(PROJECT, REGIONS, settings=settings)
    assert again == first and len([c for c, _ in fake_run.calls if c == "ListServices"]) == 3
    fake_run.add_service(PROJECT, "europe-west4", "svc-new", url=model_servers.url("svc-new"))
    refreshed = discover_cached(PROJECT, REGIONS, settings=settings, refresh=True)
    assert len(refreshed) == 4


def test_the_registry_merges_models_toml_and_cloud_run(
    cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 2, adapters=1)
    registry = load_backends()
    backends = list(registry.backends)
    assert [b.source for b in backends] == ["models.toml"] * 2 + ["cloud-run"] * 4 and len(registry.services) == 2
    assert (registry.discovery, registry.problems) == ("ok", ())
    assert [b.name for b in filter_backends(backends, "lora 001")] == ["svc-001/pets-lora-001-0"]
    adapter = registry.find("svc-001/pets-lora-001-0")
    assert (adapter.server, adapter.label) == ("svc-001", "svc-001/pets-lora-001-0 · adapter")
    assert registry.find("svc-001/google/gemma-3-4b-it").label == "svc-001/google/gemma-3-4b-it · base"


def test_services_that_cannot_be_used_are_named_and_the_rest_still_work(
    cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 3, adapters=1)
    model_servers.behaviour.update({"svc-001": "forbidden", "svc-002": "slow"})
    model_servers.slow_s = 10.0
    registry = load_backends(probe_timeout_s=0.5)
    assert [b.name for b in registry.backends if b.source == "cloud-run"] == [
        "svc-000/google/gemma-3-4b-it", "svc-000/pets-lora-000-0"]
    assert sorted(registry.problems) == [
        "svc-001 (us-central1): forbidden: HTTP 403: the caller needs roles/run.invoker on svc-001",
        "svc-002 (asia-southeast1): timeout: /v1/models did not answer within 0.5 s",
    ]


def test_a_discovery_failure_is_a_problem_line_and_models_toml_still_works(
    cloud_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "forbidden-project")
    registry = load_backends()
    assert registry.names == ["pets-base", "pets-tuned"] and registry.discovery == "failed"
    assert len(registry.problems) == 1 and registry.problems[0].startswith("Cloud Run discovery failed: ")


def test_probe_without_credentials_says_how_to_log_in(
    cloud_env: Path, monkeypatch: pytest.MonkeyPatch, clients: Clients, fake_run: FakeCloudRun,
    model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 3)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    found = discover(PROJECT, REGIONS, clients=clients)
    assert {s.health for s in found} == {"no-credentials"}
    assert "gcloud auth application-default login" in (found[0].error or "")


def test_150_services_and_500_adapters_are_discovered(
    clients: Clients, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 150, adapters=3)
    for i in range(50):  # 150 x 3 + 50 = 500 adapters
        model_servers.adapters[f"svc-{i:03d}"].append(f"pets-extra-{i:03d}")
    found = discover(PROJECT, REGIONS, clients=clients)  # benchmarks/discovery_bench.py times it
    backends = to_backends(found)
    assert len(found) == 150 and {s.health for s in found} == {"ok"}
    assert sum(b.role == "tuned" for b in backends) == 500


def test_discover_command_prints_a_summary(
    cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers, capsys: pytest.CaptureFixture,
) -> None:
    add_fleet(fake_run, model_servers, 5)
    model_servers.behaviour["svc-004"] = "forbidden"
    assert main(["discover", "--label", "app=pets"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"services": 4, "backends": 12, "health": {"ok": 3, "forbidden": 1}}


def test_discover_bad_project_is_a_clear_error(cloud_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["discover", "--project", "missing-project"]) == 2
    assert "Check that the project exists" in capsys.readouterr().err


def test_injected_token_provider_is_used(clients: Clients, fake_run: FakeCloudRun, model_servers: ModelServers) -> None:
    add_fleet(fake_run, model_servers, 2)
    audiences: list[str] = []

    async def provider(audience: str) -> str:
        audiences.append(audience)
        return fake_id_token(audience)

    found = discover(PROJECT, REGIONS, clients=clients, token_provider=provider)
    assert {s.health for s in found} == {"ok"} and model_servers.token_requests == 0
    assert sorted(audiences) == [model_servers.url("svc-000"), model_servers.url("svc-001")]
