"""The one backend picker, on every page, from the one registry: models.toml plus what discovery finds.

Driven through streamlit.testing from the entrypoint, with discovery pointed at the local Admin API and
the discovered URLs at loopback OpenAI-compatible services that want a Google ID token.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from testkit import REPO, free_port
from testkit.cloudrun_fakes import FakeCloudRun, ModelServers, add_fleet

pytestmark = pytest.mark.slow


@pytest.fixture
def app(cloud_env: Path, monkeypatch: pytest.MonkeyPatch, pets: Path):
    monkeypatch.setenv("LOCAL_MODELS_PORT", str(free_port()))  # the local models are down here: not the point
    monkeypatch.setenv("PETS_DIR", str(pets))
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)


def test_classify_lists_a_discovered_service_and_its_adapter_and_answers_from_both(
    app: AppTest, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 1, adapters=1)
    model_servers.answers.update({"google/gemma-3-4b-it": "It is a Bengal cat.", "pets-lora-000-0": "Havanese"})
    at = app.run()
    picker = at.multiselect(key="classify-backends")
    assert picker.options == ["pets-base · base", "pets-tuned · tuned",
                              "svc-000/google/gemma-3-4b-it · base",
                              "svc-000/pets-lora-000-0 · adapter"]
    picker.set_value(["svc-000/google/gemma-3-4b-it", "svc-000/pets-lora-000-0"]).run()
    at.radio(key="source").set_value("Sample photos").run()
    at.selectbox(key="sample-breed").set_value("havanese").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric} == {
        "svc-000/google/gemma-3-4b-it": "Bengal ❌", "svc-000/pets-lora-000-0": "Havanese ✅"}
    assert sorted(set(model_servers.chats)) == [("svc-000", "google/gemma-3-4b-it"), ("svc-000", "pets-lora-000-0")]


def test_650_backends_narrow_by_server_kind_and_search(
    app: AppTest, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 150, adapters=3)
    for i in range(50):  # 150 x 3 + 50 = 500 adapters, 150 base models
        model_servers.adapters[f"svc-{i:03d}"].append(f"pets-extra-{i:03d}")
    at = app.run()
    at.multiselect(key="classify-backends").set_value([]).run()  # nothing picked: the filters alone decide
    servers = at.selectbox(key="classify-backends-server")
    assert servers.options[:3] == ["All servers (652 backends)", "local CPU server (1 base, 1 tuned)",
                                   "svc-000 (1 base, 4 adapters)"]
    assert len(servers.options) == 1 + 1 + 150
    servers.set_value("svc-012").run()
    assert at.multiselect(key="classify-backends").options == [
        "svc-012/google/gemma-3-4b-it · base", "svc-012/pets-extra-012 · adapter",
        *[f"svc-012/pets-lora-012-{k} · adapter" for k in range(3)],
    ]
    at.selectbox(key="classify-backends-kind").set_value("base").run()
    assert at.multiselect(key="classify-backends").options == ["svc-012/google/gemma-3-4b-it · base"]
    at.selectbox(key="classify-backends-server").set_value("All servers").run()
    at.selectbox(key="classify-backends-kind").set_value("tuned").run()
    at.text_input(key="classify-backends-search").input("extra-04").run()
    picker = at.multiselect(key="classify-backends")
    assert picker.options == [f"svc-{i:03d}/pets-extra-{i:03d} · adapter"
                              for i in range(40, 50)]
    picker.set_value(["svc-041/pets-extra-041"]).run()
    # narrowing again keeps what was picked, and the picked backend answers
    at.text_input(key="classify-backends-search").input("lora-100-1").run()
    assert at.multiselect(key="classify-backends").value == ["svc-041/pets-extra-041"]
    assert "svc-041/pets-extra-041 · adapter" in at.multiselect(key="classify-backends").options
    assert not at.exception


def test_presenters_see_what_discovery_could_not_use(
    app: AppTest, fake_run: FakeCloudRun, model_servers: ModelServers,
) -> None:
    add_fleet(fake_run, model_servers, 2, adapters=1)
    model_servers.behaviour["svc-001"] = "forbidden"
    at = app.run()
    assert [t.value for t in at.text] == [
        "svc-001 (us-central1): forbidden: HTTP 403: the caller needs roles/run.invoker on svc-001"]
    assert [e.label for e in at.expander] == ["1 backend problem (the other backends work)"]
    assert "svc-000/pets-lora-000-0 · adapter" in at.multiselect(key="classify-backends").options  # still offered
    assert not any(o.startswith("svc-001/") for o in at.multiselect(key="classify-backends").options)


def test_attendees_do_not_see_server_details(
    app: AppTest, fake_run: FakeCloudRun, model_servers: ModelServers, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_MODE", "attendee")
    add_fleet(fake_run, model_servers, 2, adapters=1)
    model_servers.behaviour["svc-001"] = "forbidden"
    at = app.run()
    assert not at.text and not at.expander  # no problem lines, no server names beyond the backends themselves
    assert "svc-000/pets-lora-000-0 · adapter" in at.multiselect(key="classify-backends").options


@pytest.mark.parametrize("page", ["app_pages/accuracy.py", "app_pages/live.py", "app_pages/tuning.py"])
def test_every_page_picks_from_the_same_registry(
    app: AppTest, fake_run: FakeCloudRun, model_servers: ModelServers, page: str,
) -> None:
    add_fleet(fake_run, model_servers, 1, adapters=1)
    at = app.run()
    at.switch_page(page).run()
    key = {"accuracy.py": "eval-backend", "live.py": "live-backend", "tuning.py": "launch-base"}[page.split("/")[-1]]
    options = at.selectbox(key=key).options
    wanted = "svc-000/google/gemma-3-4b-it · base"
    assert wanted in options, options
    if key != "launch-base":
        assert "svc-000/pets-lora-000-0 · adapter" in options
    else:  # Tuning picks a base model to tune
        assert all(o.endswith(" · base") for o in options)
    assert not at.exception
