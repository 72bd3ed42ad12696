"""The Tuning page through streamlit.testing: finished runs, the local trainer with progress, jobs and launch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.breeds import BREED_IDS
from lib.errors import UserError
from lib.finetune import (
    GemmaTrainConfig,
    TrainingProgress,
    execution_cost_usd,
    list_finished_runs,
    local_training_job,
    new_tuning_run_name,
    submit_gemma_job,
    train_gemma,
)
from lib.store import Store

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "tuning.py")


@pytest.fixture
def page_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_API_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.setenv("PETS_ARTIFACTS", str(tmp_path / "pets-tuned"))
    monkeypatch.setenv("APP_MODE", "presenter")
    st.cache_data.clear()
    st.cache_resource.clear()  # pages/_common caches Settings per process
    return tmp_path


@pytest.mark.parametrize(
    "duration_s, tasks, gpu, expected",
    [
        (3600, 1, "nvidia-l4", 3600 * (0.0001867 + 4 * 0.000018 + 16 * 0.000002)),
        (600, 2, "nvidia-l4", 1200 * (0.0001867 + 4 * 0.000018 + 16 * 0.000002)),
        (None, 1, "nvidia-l4", None),  # still pending
        (600, 1, None, None),  # a CPU job: not in the GPU price table
        (600, 1, "nvidia-a100", None),
    ],
)
def test_execution_cost_estimate(duration_s, tasks, gpu, expected):
    cost = execution_cost_usd(duration_s, tasks, gpu)
    assert cost == (None if expected is None else pytest.approx(expected))


def test_finished_runs_are_listed_from_the_store_and_unfinished_ones_skipped(tmp_path: Path):
    store = Store(tmp_path / "results")
    assert list_finished_runs(store) == []  # a fresh clone: no tuning/ folder yet
    store.write_json({"steps": 2, "after": {"accuracy": 0.5}}, "tuning", "r1", "metrics.json")
    store.write_text("# card\n", "tuning", "r1", "MODEL_CARD.md")
    store.write_text("not finished", "tuning", "r2", "trainer_state.json")
    store.write_text("not JSON", "tuning", "r3", "metrics.json")
    runs = list_finished_runs(str(tmp_path / "results"))
    assert [(r.name, r.metrics["steps"], r.card) for r in runs] == [("r1", 2, "# card\n")]
    assert runs[0].url == store.url("tuning", "r1")


def test_a_missing_results_bucket_is_a_user_error_for_the_listing():
    with pytest.raises(UserError, match="bucket 'no-such-bucket-41' does not exist"):
        list_finished_runs("memory://no-such-bucket-41/results")


def test_default_run_names_are_run_ids_labelled_by_the_model():
    first, second = new_tuning_run_name("google/gemma-3-4b-it"), new_tuning_run_name("google/gemma-3-4b-it")
    assert first != second and first.split("-", 1)[1].startswith("gemma-3-4b-it-")


def test_the_local_trainer_job_fails_plainly_on_a_folder_without_photos(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    final = local_training_job(tmp_path / "empty", tmp_path / "out").start().wait(60)
    assert final.state == "failed" and final.traceback is None and "no labelled pet photos" in (final.error or "")


def test_launch_dry_run_renders_the_gcloud_commands():
    lines: list[str] = []
    result = submit_gemma_job(image="eu-docker.pkg.dev/p/t/gemma-trainer:1", dry_run=True, out=lines.append,
                              trainer_args=["--model-id", "google/gemma-3-4b-it", "--out", "gs://b/results/tuning/r1"])
    assert result["dry_run"] is True
    text = "\n".join(lines)
    assert "gcloud run jobs create pets-finetune" in text and "nvidia-l4" in text
    assert "gs://b/results/tuning/r1" in text and "eu-docker.pkg.dev/p/t/gemma-trainer:1" in text


@pytest.mark.slow
def test_page_shows_a_finished_gemma_run(page_env: Path, train_config: GemmaTrainConfig):
    train_gemma(train_config.model_copy(update={"out": str(page_env / "results" / "tuning" / "r1"), "max_steps": 2}))
    (page_env / "results" / "tuning" / "unfinished").mkdir()
    assert [r.name for r in list_finished_runs(str(page_env / "results"))] == ["r1"]
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("GOOGLE_CLOUD_PROJECT" in i.value for i in at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Steps"] == "2" and metrics["Held-out accuracy"].endswith("%")
    assert any("vllm serve" in c.value for c in at.code)


@pytest.mark.slow
def test_local_trainer_runs_in_the_background_with_progress(page_env: Path, pets: Path):
    few = page_env / "photos"  # two photos per breed: one to train on, one held out; keeps the run short
    few.mkdir()
    for breed in BREED_IDS:
        for src in sorted(pets.glob(f"{breed}_*.jpg"))[:2]:
            shutil.copy(src, few / src.name)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at = at.run()
    at.text_input(key="local-data").set_value(str(few)).run()
    at.button(key="local-train").click().run()
    assert not at.exception
    run = at.session_state["tuning-local-run"]
    final = run.wait(300)
    assert final.state == "succeeded", final.error
    assert isinstance(final.progress, TrainingProgress) and final.progress.done == final.progress.total
    assert final.log[0].endswith("started") and final.log[-1].endswith("succeeded") and len(final.log) > 2
    assert (page_env / "pets-tuned" / "metrics.json").exists()
    at.run()
    assert any(s.value.startswith("New pets-tuned in") for s in at.success)
    assert at.selectbox(key="tuning-run").value == "pets-tuned (local)"
    # The trainer's own figures (which are the harness's), the difference in points.
    r = final.result
    shown = {m.label: m for m in at.metric}["Held-out accuracy"]
    assert shown.value == f"{100 * r.test_accuracy:.1f}%"
    assert shown.delta == f"{100 * (r.test_accuracy - r.base_test_accuracy):+.1f} pts vs pets-base"


@pytest.fixture
def fake_cloud(page_env: Path, monkeypatch: pytest.MonkeyPatch):
    """The Cloud Run Admin API fake (gRPC) and token endpoint from tests/cloudrun, and an env pointing at them."""
    from testkit.cloudrun_fakes import PROJECT, REGIONS, FakeCloudRun, ModelServers, write_service_account

    run, servers = FakeCloudRun().start(), ModelServers().start()
    try:
        key = write_service_account(page_env / "sa.json", servers.token_uri)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        monkeypatch.setenv("NO_GCE_CHECK", "True")
        monkeypatch.setenv("CLOUDSDK_CONFIG", str(page_env / "gcloud"))
        monkeypatch.setenv("CLOUD_RUN_API_ENDPOINT", run.endpoint)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
        monkeypatch.setenv("CLOUD_RUN_REGION", REGIONS[0])
        yield run
    finally:
        servers.stop()
        run.stop()


@pytest.mark.slow
def test_presenter_launches_a_job_and_sees_its_execution(fake_cloud):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and not at.dataframe  # no jobs yet
    form = {t.label: t for t in at.text_input}
    form["Trainer image"].set_value("europe-west4-docker.pkg.dev/p/training/gemma-trainer:1")
    next(c for c in at.checkbox if c.label.startswith("Dry run")).set_value(False)
    at.button[0].click().run()  # the form's Launch button
    assert not at.exception
    assert any(s.value.startswith("Started execution pets-finetune-") for s in at.success)
    at.run()  # the listing sits above the form: the next run of the page shows the new job
    jobs, executions = at.dataframe[0].value, at.dataframe[1].value
    assert list(jobs["job"]) == ["pets-finetune"] and list(jobs["GPU"]) == ["nvidia-l4"]
    assert len(executions) == 1 and executions.iloc[0]["state"] in ("pending", "running")
    assert "est. cost (USD)" in executions.columns


@pytest.mark.slow
def test_finished_runs_in_a_bucket_are_listed(gcs):
    store = Store("gs://pets-results/results")
    store.write_json({"steps": 3, "after": {"accuracy": 0.75}}, "tuning", "r1", "metrics.json")
    store.write_text("{}", "tuning", "unfinished", "trainer_state.json")
    runs = list_finished_runs("gs://pets-results/results")
    assert [(r.name, r.url, r.card) for r in runs] == [("r1", "gs://pets-results/results/tuning/r1", None)]


@pytest.mark.slow
def test_a_missing_results_bucket_is_one_sentence_and_the_local_trainer_still_works(page_env: Path, gcs,
                                                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RESULTS_ROOT", "gs://no-such-bucket/results")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "gs://no-such-bucket/results: bucket 'no-such-bucket' does not exist; create it or set RESULTS_ROOT or "
        "pass --out"]
    assert [b for b in at.button if b.key == "local-train"]
