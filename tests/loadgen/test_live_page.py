"""The Live page through streamlit.testing: start a load, see charts while it runs, find the run saved."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow  # drives the page against real servers

REPO = Path(__file__).resolve().parents[2]


def write_registry(tmp_path: Path, name: str, base_url: str, model: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(
        f'[[backend]]\nname = "{name}"\nbase_url = "{base_url}"\nmodel = "{model}"\nfamily = "openai"\n'
    )
    return path


def drive(
    at: AppTest, backend: str, *, shape: str, rate_from: float, rate_to: float, duration: float, photos: bool
) -> None:
    at.selectbox[0].set_value(backend)
    at.radio[0].set_value("poisson")
    at.radio[1].set_value(shape)
    at.number_input[0].set_value(rate_from)
    at.number_input[1].set_value(rate_to)
    at.number_input[2].set_value(duration)
    at.toggle[0].set_value(photos)
    next(b for b in at.button if b.label == "Start").click().run()


def wait_done(at: AppTest, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        load = at.session_state["live_load"]
        if load.done:
            break
        time.sleep(0.3)
    at.run()


def test_a_ramp_against_the_no_op_server_charts_and_saves(noop, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_TOML", str(write_registry(tmp_path, "noop", f"{noop}/v1", "noop")))
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "app_pages" / "live.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert any("Pick a backend" in i.value for i in at.info)
    drive(at, "noop", shape="ramp", rate_from=5, rate_to=60, duration=2.0, photos=False)
    assert not at.exception, at.exception
    time.sleep(1.0)
    at.run()  # a refresh while it runs: client charts are there
    charts = at.get("plotly_chart")
    assert len(charts) >= 2
    wait_done(at, 15)
    assert not at.exception, at.exception
    assert any("Summary" in h.value for h in at.subheader)
    assert not next(b for b in at.button if b.label == "Start").disabled  # ready for the next run
    saved = list((tmp_path / "results" / "loadgen").glob("*/summary.json"))
    assert len(saved) == 1
    summary = json.loads(saved[0].read_text())["summary"]
    assert summary["requests_failed"] == 0 and summary["requests_sent"] > 40
    assert (saved[0].parent / "records.jsonl").exists()


def test_a_poisson_ramp_against_the_local_pets_tuned_server(local_server, pets, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_TOML", str(write_registry(tmp_path, "pets-tuned", local_server, "pets-tuned")))
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PETS_DIR", str(pets))
    at = AppTest.from_file(str(REPO / "app_pages" / "live.py"), default_timeout=60)
    at.run()
    drive(at, "pets-tuned", shape="ramp", rate_from=5, rate_to=30, duration=4.0, photos=True)
    assert not at.exception, at.exception
    time.sleep(1.5)
    at.run()
    time.sleep(1.0)
    at.run()  # two scrapes of /metrics: the server chart appears
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Client: requests/s" in titles and "Client: latency" in titles
    assert any(t.startswith("Server:") for t in titles)
    wait_done(at, 30)
    assert not at.exception, at.exception
    saved = list((tmp_path / "results" / "loadgen").glob("*/summary.json"))
    summary = json.loads(saved[0].read_text())["summary"]
    assert summary["requests_ok"] > 30 and summary["requests_failed"] == 0


def test_a_run_that_cannot_be_saved_says_why_and_keeps_its_records(noop, tmp_path, monkeypatch, gcs):
    monkeypatch.setenv("MODELS_TOML", str(write_registry(tmp_path, "noop", f"{noop}/v1", "noop")))
    monkeypatch.setenv("RESULTS_ROOT", "gs://no-such-bucket/results")
    monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "app_pages" / "live.py"), default_timeout=30)
    at.run()
    drive(at, "noop", shape="steady", rate_from=0, rate_to=20, duration=1.0, photos=False)
    wait_done(at, 15)
    assert not at.exception, at.exception
    [saved] = [m.value for m in at.markdown if m.value.startswith("Records and summary saved to")]
    assert "not saved: gs://no-such-bucket/results: bucket 'no-such-bucket' does not exist" in saved
    kept = list((tmp_path / "cache" / "loadgen").glob("*.jsonl"))
    assert len(kept) == 1 and kept[0].name in saved  # the records stay on this machine, named in the message
