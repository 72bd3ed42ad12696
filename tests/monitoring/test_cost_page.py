"""The Cost page through streamlit.testing: the dated table, the arithmetic, a saved load run as input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    at = AppTest.from_file(str(REPO / "app_pages" / "cost.py"), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_by_hand_shows_every_step_of_the_sum(page):
    page.radio[0].set_value("hand").run()
    page.number_input[0].set_value(1800.0)  # half an hour of one instance
    page.number_input[1].set_value(3600.0)
    page.run()
    steps = page.dataframe[-1].value
    assert list(steps["step"])[:3] == [
        "Cloud Run price per instance-second",
        "Cloud Run for the measured instance time",
        "Always-on machines over the same window",
    ]
    per_s = steps["value"][0]
    assert steps["value"][1] == pytest.approx(1800 * per_s)
    assert any(m.label == "Cheaper" for m in page.metric)
    assert "Prices as of 2026-11-28" in page.caption[-1].value


def test_a_saved_load_run_is_the_instance_time(page, tmp_path):
    run = tmp_path / "results" / "loadgen" / "20261128-030000-pets-tuned"
    run.mkdir(parents=True)
    run.joinpath("summary.json").write_text(
        json.dumps(
            {
                "run_id": run.name,
                "header": {"duration_s": 60.0, "warmup_s": 0.0},
                "summary": {"achieved_rate_rps": 52.4},
            }
        )
    )
    page.run()
    page.radio[0].set_value("a saved load run").run()
    assert not page.exception, page.exception
    assert any("60 s run x 1 instances" in c.value for c in page.caption)
    steps = page.dataframe[-1].value
    assert "60 s x" in steps["how"][1]
