"""Tuning: Cloud Run training jobs and executions, launching a Gemma run, finished runs, and the local trainer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import _common as common
from lib.accuracy import format_points
from lib.data import default_data_dir
from lib.errors import UserError
from lib.finetune import (
    TUNING_DIR,
    FinishedRun,
    TrainingProgress,
    execution_cost_usd,
    list_finished_runs,
    local_training_job,
    new_tuning_run_name,
    read_finished_run,
    submit_gemma_job,
)
from lib.jobs import Job

common.require_presenter()  # before anything else: see app_pages/_common.py

settings = common.settings()
presenter = common.is_presenter()
LOCAL_KEY = "tuning-local-run"


# Cached here rather than in _common: only this page lists jobs and runs.
@st.cache_data(ttl=15, show_spinner=False)
def jobs(project: str, region: str) -> list:
    from lib.cloudrun import list_jobs

    return list_jobs(project, region)


@st.cache_data(ttl=10, show_spinner=False)
def executions(project: str, region: str, job: str) -> list:
    from lib.cloudrun import list_executions

    return list_executions(project, region, job)


@st.cache_data(ttl=30, show_spinner=False)
def finished_runs(results_root: str, artifacts: str, local_stamp: float) -> list[FinishedRun]:
    """Gemma runs under the results root, plus the local head (`local_stamp` changes when it is retrained)."""
    runs = list_finished_runs(results_root)
    local = read_finished_run(artifacts, "pets-tuned (local)")
    return ([local] if local else []) + runs


def elapsed_s(start: str | None, duration_s: float | None) -> float | None:
    if duration_s is not None or not start:
        return duration_s
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(start)).total_seconds()


st.title("Tuning")
st.caption("Gemma LoRA runs as Cloud Run Jobs on a GPU, their results, and the CPU trainer behind `pets-tuned`.")

# --- Jobs and executions ---------------------------------------------------------------------------------
st.subheader("Cloud Run jobs")
project, region = settings.google_cloud_project, settings.region
if not project:
    st.info("Set GOOGLE_CLOUD_PROJECT (and CLOUD_RUN_REGION) to list training jobs; finished runs and the local "
            "trainer below work without a cloud account.")
else:
    try:
        job_list = jobs(project, region)
    except UserError as exc:
        st.error(str(exc))
        job_list = []
    if not job_list and project:
        st.caption(f"No jobs in {region}: launch one below (`python -m lib finetune submit` does the same).")
    if job_list:
        st.dataframe(pd.DataFrame([{
            "job": j.name, "GPU": j.gpu_type or "none", "tasks": j.task_count, "max retries": j.max_retries,
            "timeout (s)": j.timeout_s, "latest execution": j.latest_execution, "image": j.image,
        } for j in job_list]), hide_index=True, width="stretch")
        by_name = {j.name: j for j in job_list}
        chosen = by_name[st.selectbox("Executions of", list(by_name))]
        try:
            rows = []
            for e in executions(project, region, chosen.name):
                took = elapsed_s(e.start_time, e.duration_s)
                cost = execution_cost_usd(took, e.tasks_succeeded + e.tasks_failed + e.tasks_running, chosen.gpu_type)
                rows.append({"execution": e.name, "state": e.state, "start": e.start_time,
                             "duration (s)": None if took is None else round(took), "succeeded": e.tasks_succeeded,
                             "failed": e.tasks_failed, "running": e.tasks_running,
                             "est. cost (USD)": None if cost is None else round(cost, 3), "logs": e.log_uri})
            if rows:
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                             column_config={"logs": st.column_config.LinkColumn("logs", display_text="open")})
                st.caption("Estimated cost: tasks x duration at the GPU's minimum CPU and memory (lib/cost.py "
                           "price table); an upper bound, since tasks rarely run for the whole execution.")
            else:
                st.caption("This job has no executions yet.")
        except UserError as exc:
            st.error(str(exc))

# --- Launch ----------------------------------------------------------------------------------------------
if presenter:
    with st.expander("Launch a Gemma LoRA run (Cloud Run Job)"):
        # The base models the fleet serves (a vLLM service's model id is its Hugging Face id); any id can be typed.
        fleet_base = common.backend_picker("launch-base", default=(), multi=False, role="base")
        suggested = fleet_base[0].model if fleet_base and fleet_base[0].family != "local" else "google/gemma-3-4b-it"
        with st.form("launch"):
            c1, c2 = st.columns(2)
            image = c1.text_input("Trainer image", placeholder="REGION-docker.pkg.dev/PROJECT/training/gemma-trainer:1")
            gpu = c2.selectbox("GPU", ["nvidia-l4", "nvidia-rtx-pro-6000"])
            model_id = c1.text_input("Model", value=suggested, key=f"launch-model-{suggested}")
            data = c2.text_input("Photos (inside the job)", value="/data/pets",
                                 help="a mounted bucket folder of photos named like Abyssinian_101.jpg")
            # One default per session: a fresh random part on every rerun would reset the field.
            default_name = st.session_state.setdefault("tuning-default-run-name", new_tuning_run_name(model_id))
            run_name = c1.text_input("Run name", value=default_name)
            out_root = settings.results_root if settings.results_root.startswith("gs://") else "gs://BUCKET/results"
            out = c2.text_input("Output", value=f"{out_root}/{TUNING_DIR}/{run_name}")
            steps = c1.number_input("Max steps", min_value=1, value=300)
            rank = c2.number_input("LoRA rank", min_value=1, max_value=256, value=16)
            qlora = c1.checkbox("QLoRA (4-bit base)", value=False)
            merge = c2.checkbox("Also write merged weights", value=False)
            dry_run = st.checkbox("Dry run: show the gcloud commands only", value=True)
            if st.form_submit_button("Launch", type="primary"):
                trainer_args = ["--model-id", model_id, "--data", data, "--out", out, "--max-steps", str(int(steps)),
                                "--lora-r", str(int(rank)), *(["--qlora"] if qlora else []),
                                *(["--merge"] if merge else [])]
                try:
                    if not image:
                        raise UserError("give the trainer image (build it from finetune/Dockerfile)")
                    lines: list[str] = []
                    result = submit_gemma_job(image=image, trainer_args=trainer_args, gpu_type=gpu,
                                              dry_run=dry_run, out=lines.append)
                    st.code("\n".join(lines) or str(result), language="bash")
                    if not dry_run:
                        st.success(f"Started execution {result.get('execution')}.")
                        jobs.clear()
                except UserError as exc:
                    st.error(str(exc))

# --- Finished runs ---------------------------------------------------------------------------------------
st.subheader("Finished runs")
try:
    local_metrics = Path(settings.artifacts_dir) / "metrics.json"
    stamp = local_metrics.stat().st_mtime if local_metrics.exists() else 0.0
    runs = finished_runs(settings.results_root, str(settings.artifacts_dir), stamp)
except UserError as exc:
    st.error(str(exc))
    runs = []
if not runs:
    st.caption(f"No finished runs under {settings.results_root}/{TUNING_DIR}/ yet.")
else:
    run = {r.name: r for r in runs}[st.selectbox("Run", [r.name for r in runs], key="tuning-run")]
    m = run.metrics
    if "after" in m:  # a Gemma run
        before, after = m.get("before") or {}, m["after"]
        c1, c2, c3, c4 = st.columns(4)
        delta = None if not before else format_points(after["accuracy"] - before["accuracy"])
        c1.metric("Held-out accuracy", f"{100 * after['accuracy']:.1f}%", delta)
        c2.metric("Unknown rate", f"{100 * after['unknown_rate']:.1f}%")
        c3.metric("Steps", m["steps"])
        c4.metric("Samples/s", f"{m['train_samples_per_s']:.2f}")
        if m.get("loss_curve"):
            st.line_chart(pd.DataFrame(m["loss_curve"], columns=["step", "loss"]).set_index("step"))
        if after.get("answers"):
            with st.expander("Held-out answers"):
                st.dataframe(pd.DataFrame(after["answers"]), hide_index=True, width="stretch")
        st.code(m.get("serve_command", ""), language="bash")
    else:  # the local head
        c1, c2, c3 = st.columns(3)
        # The trainer's figures are the harness's (same photos, question and parser): the Accuracy page agrees.
        c1.metric("Held-out accuracy", f"{100 * m['test_accuracy']:.1f}%",
                  f"{format_points(m['test_accuracy'] - m['base_test_accuracy'])} vs pets-base")
        c2.metric("Training photos", m["n_train"])
        c3.metric("Wall time", f"{m['wall_s']:.1f} s")
    if run.card:
        with st.expander("Model card", expanded=False):
            st.markdown(run.card)
    st.caption(f"From {run.url}")

# --- Local trainer ---------------------------------------------------------------------------------------
st.subheader("Local trainer (CPU): `pets-tuned`")
if not presenter:
    st.caption("Presenters can retrain `pets-tuned` here.")
else:
    c1, c2 = st.columns(2)
    data_dir = c1.text_input("Photos", value=str(default_data_dir(settings.pets_dir)), key="local-data")
    out_dir = c2.text_input("Output (the local server loads this folder)", value=str(settings.artifacts_dir),
                            key="local-out")
    current: Job | None = st.session_state.get(LOCAL_KEY)
    busy = current is not None and current.running
    if st.button("Train pets-tuned", type="primary", disabled=busy or not data_dir, key="local-train"):
        st.session_state[LOCAL_KEY] = current = local_training_job(Path(data_dir), Path(out_dir)).start()
        busy = True

    def show(run: Job) -> None:
        snap = run.snapshot()
        if snap.state == "running":
            p: TrainingProgress | None = snap.progress
            if p is None:
                st.progress(0.0, text=f"starting ({snap.elapsed_s:.0f} s)")
            else:
                fraction = p.done / p.total if p.total else 0.0
                st.progress(min(fraction, 1.0), text=f"{p.stage}: {p.done}/{p.total} ({snap.elapsed_s:.0f} s)")
        elif snap.state == "failed" or snap.result is None:
            st.error(f"Training failed: {snap.error}")
        else:
            r = snap.result
            st.success(f"New pets-tuned in {r.out_dir}: held-out accuracy {100 * r.test_accuracy:.1f}% "
                       f"(pets-base {100 * r.base_test_accuracy:.1f}%, "
                       f"{format_points(r.test_accuracy - r.base_test_accuracy)}) on {r.n_test} photos, "
                       f"{snap.elapsed_s:.0f} s. "
                       "A local server started on that folder serves it within a second; compare it on the "
                       "Accuracy page.")
        if snap.log:
            st.caption(" · ".join(line.strip() for line in snap.log))
        if snap.state != "running" and run_every is not None:
            st.rerun()  # stop polling: the next run of the page draws this block without a timer

    if current is not None:
        run_every = 1.0 if busy else None
        st.fragment(run_every=run_every)(show)(current)
