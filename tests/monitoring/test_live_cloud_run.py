"""The Live page's server panel for a Cloud Run backend, fed by the local Cloud Monitoring API."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("fake_monitoring", ["present"], indirect=True)
def test_cloud_run_backend_charts_instances_by_state_gpu_and_staleness(
    fake_monitoring, tmp_path, monkeypatch
):
    # The load goes to a loopback port where nothing listens (no cloud); the server panel reads the fake.
    (tmp_path / "models.toml").write_text(
        '[[backend]]\nname = "gemma"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'model = "google/gemma-3-4b-it"\nfamily = "vllm"\n'
    )
    monkeypatch.setenv("MODELS_TOML", str(tmp_path / "models.toml"))
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo")
    at = AppTest.from_file(str(REPO / "app_pages" / "live.py"), default_timeout=30)
    at.run()
    at.radio[1].set_value("steady")
    at.number_input[1].set_value(5.0)
    at.number_input[2].set_value(1.0)
    at.toggle[0].set_value(False)
    at.selectbox[1].set_value("Cloud Monitoring")
    at.text_input[0].set_value("gemma")
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 15
    while not at.session_state["live_load"].done and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception, at.exception
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert {"Cloud Run: Instances", "Cloud Run: GPU utilisation", "Cloud Run: Latency (ms)"} <= set(titles)
    instances = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Cloud Run: Instances"
    )
    assert {t["name"] for t in instances["data"]} == {"instances active", "instances idle"}
    assert any("newest point 6" in c.value for c in at.caption)  # 60-odd seconds old: Cloud Monitoring lags
    assert any("connect" in w.value or "failed" in w.value for w in at.warning)  # nothing listened: counted
