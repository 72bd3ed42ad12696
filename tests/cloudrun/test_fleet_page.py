"""The Fleet page through streamlit.testing, with discovery pointed at the local Admin API."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from testkit.cloudrun_fakes import FakeCloudRun, ModelServers, add_fleet

pytestmark = pytest.mark.slow
PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "fleet.py")


@pytest.fixture
def page(cloud_env: Path, fake_run: FakeCloudRun, model_servers: ModelServers,
         monkeypatch: pytest.MonkeyPatch) -> AppTest:
    add_fleet(fake_run, model_servers, 150, adapters=3)
    model_servers.behaviour["svc-007"] = "forbidden"
    monkeypatch.setenv("LOCAL_MODELS_PORT", "9")  # nothing listens: the local backends show as down
    st.cache_data.clear()
    st.cache_resource.clear()  # settings (and so presenter access) are read once per process
    return AppTest.from_file(PAGE, default_timeout=60)


def test_fleet_shows_150_services_and_their_models(page: AppTest) -> None:
    at = page.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Backends": "598", "Cloud Run services": "150", "Healthy services": "149",
                       "GPU services": "75"}
    table = at.dataframe[0].value
    assert len(table) == 2 + 149 * 4
    row = table[table["backend"] == "svc-001/pets-lora-001-2"].iloc[0]
    assert (row["GPU"], row["min/max"], row["concurrency"], row["health"], row["region"]) == (
        "nvidia-l4 x1", "1/4", 8, "ok", "us-central1")
    assert table[table["backend"] == "pets-base"].iloc[0]["health"].startswith("down")
    assert [t.value for t in at.text] == [
        "svc-007 (us-central1): forbidden: HTTP 403: the caller needs roles/run.invoker on svc-007"]


def test_search_and_grouping(page: AppTest) -> None:
    at = page.run()
    at.text_input(key="fleet-search").input("lora-012").run()
    assert list(at.dataframe[0].value["backend"]) == [f"svc-012/pets-lora-012-{k}" for k in range(3)]
    at.toggle(key="fleet-grouped").set_value(True).run()
    assert [e.label for e in at.expander][0] == "google/gemma-3-4b-it (3)"


def test_cold_start_button_measures_and_stores(page: AppTest, model_servers: ModelServers) -> None:
    at = page.run()
    at.text_input(key="fleet-search").input("svc-003/pets-lora-003-0").run()
    at.button(key="fleet-coldstart").click().run()
    assert not at.exception
    assert at.success and at.success[0].value.startswith("svc-003/pets-lora-003-0: first answer after")
    history = at.dataframe[-1].value
    assert list(history["backend"]) == ["svc-003/pets-lora-003-0"]


def test_attendees_get_no_cold_start_button(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_MODE", "attendee")
    at = page.run()
    assert not at.exception and not [b for b in at.button if b.key == "fleet-coldstart"]


def test_a_hosted_dashboard_shows_cold_start_history_from_its_bucket(page: AppTest, gcs,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_ROOT", "gs://pets-results/hosted")
    at = page.run()
    at.text_input(key="fleet-search").input("svc-003/pets-lora-003-0").run()
    at.button(key="fleet-coldstart").click().run()
    assert not at.exception and not at.warning
    assert list(at.dataframe[-1].value["backend"]) == ["svc-003/pets-lora-003-0"]
    measured = at.dataframe[-1].value["measured_at"][0]  # 2026-12-01T09:32:18+00:00
    stamp = measured[:19].replace("-", "").replace(":", "") + "Z"
    [stored] = gcs.ls("pets-results/hosted/coldstart")  # one object, named by the one run id
    assert stored.rsplit("/", 1)[-1].startswith(f"{stamp}-svc-003-pets-lora-003-0-")
    again = AppTest.from_file(PAGE, default_timeout=60).run()  # a new session reads the history back
    assert list(again.dataframe[-1].value["backend"]) == ["svc-003/pets-lora-003-0"]


def test_a_missing_results_bucket_is_one_sentence_and_the_fleet_still_shows(page: AppTest, gcs,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_ROOT", "gs://no-such-bucket/hosted")
    at = page.run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Cold-start history unavailable: gs://no-such-bucket/hosted: bucket 'no-such-bucket' does not exist; create "
        "it or set RESULTS_ROOT or pass --out"]
    assert len(at.dataframe[0].value) == 2 + 149 * 4  # the fleet table is all there
