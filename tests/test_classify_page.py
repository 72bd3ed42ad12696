"""The Classify page through streamlit.testing: sample photos, side-by-side answers, a backend that is down."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from testkit import REPO, free_port

pytestmark = pytest.mark.slow


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch, pets: Path):
    def make(port: int) -> AppTest:
        monkeypatch.setenv("PETS_DIR", str(pets))
        monkeypatch.setenv("LOCAL_MODELS_PORT", str(port))
        st.cache_data.clear()
        st.cache_resource.clear()
        return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)

    return make


def test_a_sample_photo_is_named_by_both_models(app, local_server: str) -> None:
    at = app(urlparse(local_server).port).run()
    assert not at.exception
    ready = [m.value for m in at.markdown if "ready" in m.value]
    assert len(ready) == 2 and "**pets-base** ready" in ready[0] and "**pets-tuned** ready" in ready[1]
    at.radio(key="source").set_value("Sample photos").run()
    at.selectbox(key="sample-breed").set_value("havanese").run()
    at.button(key="use-havanese_120").click().run()
    assert not at.exception
    answers = {m.label: m.value for m in at.metric}
    assert answers["pets-tuned"] == "Havanese ✅"
    assert answers["pets-base"].endswith("❌")  # ImageNet has no Havanese
    assert any("havanese_120" in c.value for c in at.caption)


def test_one_backend_only_and_the_constrained_answer(app, local_server: str) -> None:
    at = app(urlparse(local_server).port).run()
    at.multiselect(key="classify-backends").set_value(["pets-tuned"]).run()
    at.toggle(key="constrained").set_value(True).run()
    at.radio(key="source").set_value("Sample photos").run()
    at.selectbox(key="sample-breed").set_value("pug").run()
    assert [m.label for m in at.metric] == ["pets-tuned"]
    assert at.metric[0].value == "Pug ✅"
    assert any('{"breed": "pug"}' in c.value for c in at.code)


def test_a_local_server_that_is_down_is_explained(app) -> None:
    at = app(free_port()).run()
    assert any("serve-local" in i.value for i in at.info)
    assert at.button(key="start-local")  # the presenter can start it from the page
    at.radio(key="source").set_value("Sample photos").run()
    assert [m.value for m in at.metric] == ["No answer", "No answer"]
    assert all("not reachable" in e.value for e in at.error)


def test_the_presenter_starts_the_local_server_from_the_page_and_it_answers(app) -> None:
    port = free_port()
    at = app(port).run()
    assert any("serve-local" in i.value for i in at.info)
    at.button(key="start-local").click().run()  # the real server: ONNX Runtime, both heads
    assert not at.exception and not at.error
    ready = [m.value for m in at.markdown if "ready" in m.value]
    assert len(ready) == 2 and "**pets-tuned** ready" in ready[1]
    at.radio(key="source").set_value("Sample photos").run()
    at.selectbox(key="sample-breed").set_value("pug").run()
    assert {m.label: m.value for m in at.metric}["pets-tuned"] == "Pug ✅"
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    st.cache_resource.clear()  # what the dashboard's exit does: the server it started stops with it
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0)
