"""The Accuracy page through streamlit.testing: headline numbers equal lib.metrics', galleries list the photos
tuning fixed and broke, the link's query parameters pick the runs, and attendees get no run button."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.accuracy import catalog, list_runs, read_records, summarize
from lib.settings import REPO_ROOT
from lib.store import Store
from testkit.evalkit import write_run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "artifacts" / "first-run"
# Real photo ids from the shared folder, so the galleries have pictures.
BASE = [("pug_112", "pug", "pug"), ("pug_127", "pug", "beagle"), ("beagle_10", "beagle", "beagle"),
        ("beagle_117", "beagle", "unknown"), ("Bengal_109", "Bengal", "Egyptian_Mau"),
        ("Bengal_123", "Bengal", "Bengal")]
TUNED = [("pug_112", "pug", "pug"), ("pug_127", "pug", "pug"), ("beagle_10", "beagle", "basset_hound"),
         ("beagle_117", "beagle", "beagle"), ("Bengal_109", "Bengal", "Bengal"), ("Bengal_123", "Bengal", "Bengal")]


def count(node, kind: str) -> int:
    """Elements of one type anywhere in the page (AppTest has no accessor for images)."""
    return (getattr(node, "type", None) == kind) + sum(count(c, kind) for c in getattr(node, "children", {}).values())


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch, results_root: Path, pets: Path):
    root = Store(results_root)
    runs = {
        "old-base": write_run(root, "old-base", BASE, backend="pets-base", role="base", started=100,
                              data_dir=str(pets)),
        "base": write_run(root, "base", BASE, backend="pets-base", role="base", started=200, data_dir=str(pets)),
        "tuned": write_run(root, "tuned", TUNED, backend="pets-tuned", role="tuned", started=300, data_dir=str(pets)),
        "other": write_run(root, "other", [(p, t, t) for p, t, _ in BASE], backend="perfect", started=50),
    }
    monkeypatch.setenv("PETS_DIR", str(pets))

    def make(mode: str = "attendee", **params: str) -> AppTest:
        monkeypatch.setenv("APP_MODE", mode)
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(REPO / "app_pages" / "accuracy.py"), default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        return at.run()

    make.runs, make.root = runs, root  # type: ignore[attr-defined]
    return make


def test_latest_base_and_tuned_runs_side_by_side_with_lib_metrics_figures(app) -> None:
    at = app()
    assert not at.exception
    assert at.selectbox(key="baseline-run").value == "base" and at.selectbox(key="tuned-run").value == "tuned"
    metrics = {m.label: m for m in at.metric}
    root = app.root
    base = summarize(read_records(root, "base").records)
    tuned = summarize(read_records(root, "tuned").records)
    assert metrics["Baseline accuracy · pets-base"].value == f"{base.accuracy:.1%}" == "50.0%"
    assert metrics["Tuned accuracy · pets-tuned"].value == f"{tuned.accuracy:.1%}" == "83.3%"
    assert metrics["Photos fixed / broken by tuning"].value == "3 / 1"
    table = at.table[0].value
    assert f"{base.macro_f1:.3f}" in table["Baseline"].tolist() and f"{tuned.macro_f1:.3f}" in table["Tuned"].tolist()
    assert at.query_params["baseline"] == "base" and at.query_params["tuned"] == "tuned"


def in_order(node) -> list[tuple[str, str]]:
    """(type, text) of every markdown and caption element, in the order the page shows them."""
    own = [(node.type, node.value)] if getattr(node, "type", None) in ("markdown", "caption") else []
    children = getattr(node, "children", {})
    return own + [item for key in sorted(children) for item in in_order(children[key])]


def gallery(at: AppTest, title: str) -> list[str]:
    """The captions under one gallery's heading, up to the next heading."""
    shown, captions, inside = in_order(at._tree), [], False
    for kind, text in shown:
        if kind == "markdown" and text.startswith("**") and " by tuning: " in text:
            inside = text.startswith(f"**{title}:")
        elif inside and kind == "caption" and text.startswith("**"):
            captions.append(text)
    return captions


def test_the_difference_is_in_percentage_points(app) -> None:
    at = app()
    assert {m.label: m for m in at.metric}["Tuned accuracy · pets-tuned"].delta == "+33.3 pts"
    assert any("tuning changed accuracy by **+33.3 pts** (95% interval " in m.value and " pts); " in m.value
               for m in at.markdown)


def test_galleries_show_the_photos_fixed_and_broken_by_tuning(app) -> None:
    at = app()
    assert "**Fixed by tuning: 3 photos**" in [m.value for m in at.markdown]
    assert "**Broken by tuning: 1 photos**" in [m.value for m in at.markdown]
    fixed = {c.split("**")[1]: c for c in gallery(at, "Fixed by tuning")}
    broken = {c.split("**")[1]: c for c in gallery(at, "Broken by tuning")}
    assert sorted(fixed) == ["Bengal_109", "beagle_117", "pug_127"] and sorted(broken) == ["beagle_10"]
    assert "baseline: not a breed" in fixed["beagle_117"] and "tuned: Beagle" in fixed["beagle_117"]
    assert "baseline: Egyptian Mau" in fixed["Bengal_109"] and "tuned: Bengal" in fixed["Bengal_109"]
    assert "baseline: Beagle" in broken["beagle_10"] and "tuned: Basset Hound" in broken["beagle_10"]
    assert not any("not on this machine" in i.value for i in at.info)
    assert count(at._tree, "image") >= 4  # thumbnails from the photo folder recorded in run.json


def test_query_params_open_the_same_comparison(app) -> None:
    at = app(baseline="old-base", tuned="other")
    assert at.selectbox(key="baseline-run").value == "old-base" and at.selectbox(key="tuned-run").value == "other"
    assert any("?baseline=old-base&tuned=other" in c.value for c in at.code)


def test_a_link_to_a_run_that_is_not_there_falls_back_with_a_warning(app) -> None:
    at = app(baseline="gone")
    assert any("'gone'" in w.value for w in at.warning)
    assert at.selectbox(key="baseline-run").value == "base"


def test_attendees_have_no_run_button_and_the_presenter_has_one(app) -> None:
    assert not [b for b in app("attendee").button if b.key == "run-eval"]
    presenter = app("presenter")
    assert [b for b in presenter.button if b.key == "run-eval"]


def test_photos_missing_on_this_machine_are_explained(app) -> None:
    root = app.root
    write_run(root, "far-base", [("pug_9999", "pug", "beagle")], role="base", started=400, data_dir="/nowhere")
    write_run(root, "far-tuned", [("pug_9999", "pug", "pug")], role="tuned", started=500, data_dir="/nowhere")
    at = app()
    assert not at.exception
    assert any("not on this machine" in i.value for i in at.info)
    assert any(c.value.startswith("**pug_9999**") for c in at.caption)


def open_page(monkeypatch: pytest.MonkeyPatch, results_root: str, mode: str = "attendee") -> AppTest:
    monkeypatch.setenv("APP_MODE", mode)
    monkeypatch.setenv("RESULTS_ROOT", results_root)
    st.cache_data.clear()
    st.cache_resource.clear()  # settings are read once per process
    return AppTest.from_file(str(REPO / "app_pages" / "accuracy.py"), default_timeout=60).run()


def test_a_fresh_clone_shows_the_report_shipped_with_the_code(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    at = open_page(monkeypatch, str(tmp_path / "not" / "created" / "yet"))  # an attendee, nothing run yet
    assert not at.exception and not at.error
    shipped = catalog(str(tmp_path / "elsewhere"), SHIPPED)
    base_id, tuned_id = shipped.default_pair()
    assert (at.selectbox(key="baseline-run").value, at.selectbox(key="tuned-run").value) == (base_id, tuned_id)
    figures = {r: summarize(read_records(Store(SHIPPED), r).records) for r in (base_id, tuned_id)}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Baseline accuracy · pets-base"] == f"{figures[base_id].accuracy:.1%}"
    assert metrics["Tuned accuracy · pets-tuned"] == f"{figures[tuned_id].accuracy:.1%}"
    made = [i.value for i in at.info if i.value.startswith("Shipped with the code: made on ")]
    assert made and ("by `python -m lib eval --backend pets-base` and `python -m lib eval --backend pets-tuned` "
                     "against the local model server, on 74 photos of the test split of `pets`") in made[0]
    assert not (tmp_path / "not").exists()  # reading the page creates nothing


def test_without_shipped_runs_an_empty_root_says_how_to_make_some(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPPED_RESULTS", str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    at = open_page(monkeypatch, str(tmp_path / "empty"))
    assert any("No evaluation runs yet" in i.value for i in at.info)


def test_a_results_bucket_that_does_not_exist_is_one_sentence(monkeypatch: pytest.MonkeyPatch, gcs) -> None:
    at = open_page(monkeypatch, "gs://no-such-bucket/results", mode="presenter")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "gs://no-such-bucket/results: bucket 'no-such-bucket' does not exist; create it or set RESULTS_ROOT or "
        "pass --out"]
    assert [b for b in at.button if b.key == "run-eval"]  # the presenter's panel still works


def finished_run(at: AppTest, root: Store, backend: str, timeout_s: float = 60) -> str:
    """Wait for the page's evaluation of `backend` to finish and show its result; its run id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = next((r for r in list_runs(root) if r.backend == backend and r.photo_count == 4 and r.finished_unix_s),
                   None)
        # run.json is written just before the background job records its result: poll the page too.
        if run is not None and any(f"Run {run.run_id}: 4 photos" in s.value for s in at.run().success):
            return run.run_id
        time.sleep(0.2)
    raise AssertionError(f"no finished 4-photo run of {backend}")


def test_the_presenter_runs_both_evaluations_and_the_pickers_move_to_them(
    app, local_server: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_MODELS_PORT", str(urlparse(local_server).port))
    at = app("presenter")
    assert (at.selectbox(key="baseline-run").value, at.selectbox(key="tuned-run").value) == ("base", "tuned")
    at.number_input(key="eval-limit").set_value(4)
    at.button(key="run-eval").click().run()  # pets-tuned is the default backend
    assert not at.exception
    tuned = finished_run(at, app.root, "pets-tuned")
    run = next(r for r in list_runs(app.root) if r.run_id == tuned)
    assert run.role == "tuned" and len(read_records(app.root, tuned).records) == 4
    at.run()
    assert (at.selectbox(key="baseline-run").value, at.selectbox(key="tuned-run").value) == ("base", tuned)

    at.selectbox(key="eval-backend").set_value("pets-base").run()
    at.button(key="run-eval").click().run()
    base = finished_run(at, app.root, "pets-base")
    at.run()
    assert (at.selectbox(key="baseline-run").value, at.selectbox(key="tuned-run").value) == (base, tuned)
    metrics = {m.label: m.value for m in at.metric}
    figures = {r: summarize(read_records(app.root, r).records) for r in (base, tuned)}
    assert metrics["Baseline accuracy · pets-base"] == f"{figures[base].accuracy:.1%}"
    assert metrics["Tuned accuracy · pets-tuned"] == f"{figures[tuned].accuracy:.1%}"
