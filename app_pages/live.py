"""Live: send load to a backend and watch client and server figures while it runs (presenter only)."""

from __future__ import annotations

import time
from dataclasses import asdict
from urllib.parse import urlparse

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import _common as common
from lib import monitoring
from lib.data import default_data_dir
from lib.errors import UserError
from lib.jobs import Job
from lib.loadgen import (
    LoadPlan,
    LoadProfile,
    LoadResult,
    LoadRun,
    Mode,
    Ramp,
    chat_url,
    load_job,
    local_records_dir,
    prepare_payloads,
    save_run,
    text_payload,
    timeline,
)
from lib.registry import Backend
from lib.store import new_run_id

common.require_presenter()  # before anything else: see app_pages/_common.py

settings = common.settings()


@st.cache_data(show_spinner="Encoding photos before the clock starts…", max_entries=8)
def photo_payloads(folder: str, model: str, max_side: int, limit: int) -> tuple:
    return tuple(prepare_payloads(folder, model, max_side=max_side, limit=limit))


def is_local(backend: Backend) -> bool:
    return urlparse(backend.base_url).hostname in ("127.0.0.1", "localhost", "::1")


def cloud_run_service(backend: Backend) -> str:
    """`https://gemma-3-4b-123456789.europe-west4.run.app/v1` -> `gemma-3-4b` (best guess; editable)."""
    host = urlparse(backend.base_url).hostname or ""
    first = host.split(".")[0]
    parts = first.split("-")
    return "-".join(parts[:-1]) if len(parts) > 1 and (parts[-1].isdigit() or len(parts[-1]) == 10) else first


def line_chart(df: pd.DataFrame, x: str, ys: dict[str, str], title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    for column, name in ys.items():
        if column in df and df[column].notna().any():
            fig.add_trace(go.Scatter(x=df[x], y=df[column], mode="lines+markers", name=name))
    fig.update_layout(
        title=title,
        xaxis_title="seconds since start",
        yaxis_title=y_title,
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h"},
    )
    return fig


st.title("Live load")
st.caption(
    "Open-loop load from the dashboard's own load generator; client figures from every request, "
    "server figures from the backend's /metrics (local) or Cloud Monitoring (Cloud Run)."
)

state = st.session_state
load: Job[LoadResult] | None = state.get("live_load")
running = load is not None and not load.done

picked = common.backend_picker("live-backend", default=("pets-tuned",), multi=False)
common.show_registry_problems()
with st.form("profile"):
    c1, c2, c3 = st.columns(3)
    c1.markdown(f"**Backend**  \n{picked[0].label if picked else 'none picked'}")
    modes: list[Mode] = ["poisson", "constant", "concurrency"]
    mode = c2.radio("Arrivals", modes, horizontal=True, disabled=running)
    shape = c3.radio("Shape", ["ramp", "steady"], horizontal=True, disabled=running)
    c4, c5, c6, c7 = st.columns(4)
    rate_from = c4.number_input("Rate from (req/s)", min_value=0.0, value=5.0, step=1.0)
    rate_to = c5.number_input("Rate to / steady rate (req/s)", min_value=0.0, value=100.0, step=1.0)
    duration = c6.number_input("Duration (s)", min_value=1.0, max_value=3600.0, value=60.0, step=5.0)
    concurrency = c7.number_input("Concurrency (closed loop)", min_value=1, max_value=1024, value=8)
    c8, c9, c10, c11 = st.columns(4)
    photos_dir = default_data_dir(settings.pets_dir)
    use_photos = c8.toggle("Send pet photos", value=photos_dir.is_dir())
    max_images = c9.number_input("Photos to cycle through", min_value=1, max_value=1000, value=32)
    max_side = c10.number_input(
        "Longest side sent (px)", min_value=64, max_value=4096, value=settings.max_image_side
    )
    timeout_s = c11.number_input("Per-request timeout (s)", min_value=0.5, value=30.0)
    c12, c13 = st.columns(2)
    server_source = c12.selectbox(
        "Server figures from",
        ["auto", "/metrics", "Cloud Monitoring"],
        help="auto: /metrics for a loopback backend, Cloud Monitoring otherwise",
    )
    service_name = c13.text_input("Cloud Run service (for Cloud Monitoring; blank: guessed from the URL)")
    start = st.form_submit_button("Start", type="primary", disabled=running)

if st.button("Stop", disabled=not running) and load is not None:
    load.stop()
    st.toast("Stopping: nothing more is sent; in-flight requests are recorded as interrupted.")

if start and not picked:
    st.error("Pick a backend first.")
elif start:
    backend = picked[0]
    try:
        if mode == "concurrency":
            profile = LoadProfile(mode="concurrency", concurrency=int(concurrency), duration_s=duration)
        elif shape == "ramp":
            profile = LoadProfile(mode=mode, ramp=Ramp(rate_from, rate_to, duration), duration_s=duration)
        else:
            profile = LoadProfile(mode=mode, rate_rps=rate_to, duration_s=duration)
        if use_photos:
            # A missing or half-downloaded folder is a UserError naming it and how to get photos.
            payloads = photo_payloads(str(photos_dir), backend.model, int(max_side), int(max_images))
        else:
            payloads = (text_payload(backend.model),)
        headers = common.auth_headers(backend)  # from the kept client: one ID token per service
        run_id = new_run_id(backend.name)
        plan = LoadPlan(
            url=chat_url(backend.base_url),
            model=backend.model,
            profile=profile,
            payloads=payloads,
            out_path=local_records_dir(settings.cache_dir) / f"{run_id}.jsonl",
            timeout_s=timeout_s,
            headers=headers,
        )
        state["live_run"] = run = LoadRun(plan)  # the live records come from the run itself
        state["live_load"] = load_job(run).start()
        if server_source == "auto":
            server_source = "/metrics" if is_local(backend) else "Cloud Monitoring"
        state["live_meta"] = {
            "run_id": run_id,
            "backend": backend.name,
            "saved": None,
            "started": time.time(),
            "server": server_source,
            "service": service_name or cloud_run_service(backend),
        }
        state["live_server"] = []
        state.pop("live_scrape", None)
        st.rerun()
    except UserError as exc:
        st.error(str(exc))


def server_panel(backend: Backend, elapsed_s: float, source: str, service: str) -> None:
    """Server-side figures: the backend's /metrics when it is local, Cloud Monitoring for Cloud Run."""
    if source == "/metrics":
        url = backend.base_url.rstrip("/").removesuffix("/v1") + "/metrics"
        try:
            cur = monitoring.scrape(url, timeout_s=1.0)
        except UserError as exc:
            st.info(f"Server metrics unavailable: {exc}")
            return
        prev = state.get("live_scrape")
        state["live_scrape"] = cur
        if prev is not None:
            delta = monitoring.local_metrics(prev, cur)
            state["live_server"].append({"t_s": round(elapsed_s, 1), **asdict(delta)})
        history = pd.DataFrame(state["live_server"])
        if history.empty:
            st.caption(f"Reading {url} every refresh…")
            return
        s1, s2 = st.columns(2)
        s1.plotly_chart(
            line_chart(
                history,
                "t_s",
                {"request_rate_rps": "answered/s", "error_rate_rps": "errors/s"},
                "Server: requests/s (from /metrics)",
                "req/s",
            ),
            key="srv_rate",
        )
        s2.plotly_chart(
            line_chart(
                history,
                "t_s",
                {"latency_p50_ms": "p50", "latency_p95_ms": "p95", "latency_p99_ms": "p99"},
                "Server: latency",
                "ms",
            ),
            key="srv_latency",
        )
        return
    if not settings.google_cloud_project:
        st.info("Set GOOGLE_CLOUD_PROJECT to chart Cloud Monitoring figures for this service.")
        return
    try:
        m = cloud_metrics(settings.google_cloud_project, service, int(time.time() // 15))
    except UserError as exc:
        st.warning(str(exc))
        return
    age = (
        "no points yet" if m.newest_point_age_s is None else f"newest point {m.newest_point_age_s:.0f} s old"
    )
    st.caption(
        f"Cloud Monitoring for service {service}, last 15 minutes "
        f"({age}; Cloud Monitoring lags by a minute or more). " + " ".join(m.notes)
    )
    rows = []
    for state_name, points in m.instances_by_state.items():
        rows += [
            {"t": pd.to_datetime(p.t_unix_s, unit="s"), "series": f"instances {state_name}", "value": p.value}
            for p in points
        ]
    rows += [
        {"t": pd.to_datetime(p.t_unix_s, unit="s"), "series": "GPU utilisation", "value": p.value}
        for p in m.gpu_utilization
    ]
    rows += [
        {"t": pd.to_datetime(p.t_unix_s, unit="s"), "series": f"latency {k}", "value": p.value}
        for k, pts in m.latency_ms.items()
        for p in pts
    ]
    rows += [
        {"t": pd.to_datetime(p.t_unix_s, unit="s"), "series": "requests/s", "value": p.value}
        for p in m.request_rate_rps
    ]
    df = pd.DataFrame(rows)
    if df.empty:
        return
    for group, prefix in (
        ("Instances", "instances"),
        ("Latency (ms)", "latency"),
        ("Requests/s", "requests"),
        ("GPU utilisation", "GPU"),
    ):
        part = df[df["series"].str.startswith(prefix)]
        if not part.empty:
            fig = go.Figure(
                [
                    go.Scatter(x=g["t"], y=g["value"], name=s, mode="lines+markers")
                    for s, g in part.groupby("series")
                ]
            )
            fig.update_layout(title=f"Cloud Run: {group}", height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})
            st.plotly_chart(fig, key=f"cm_{prefix}")


@st.cache_data(ttl=15, show_spinner=False)
def cloud_metrics(project: str, service: str, _tick: int) -> monitoring.ServiceMetrics:
    return monitoring.service_metrics(monitoring.make_client(settings), project, service)


@st.fragment(run_every="2s")
def live_panel() -> None:
    load: Job[LoadResult] | None = state.get("live_load")
    run: LoadRun | None = state.get("live_run")
    if load is None or run is None:
        st.info("Pick a backend and a load profile, then Start.")
        return
    meta = state["live_meta"]
    snap = load.snapshot()
    records = list(run.records)  # a snapshot; the engine keeps appending on its own thread
    elapsed = run.elapsed_s if snap.done else (time.time() - (run.started_unix_s or time.time()))
    bins = timeline(records, bin_s=1.0, schedule_offsets_s=run.schedule_s, until_s=max(elapsed, 1.0))
    df = pd.DataFrame([asdict(b) for b in bins])
    failed = sum(1 for r in records if not r.ok and r.error_kind != "interrupted")
    lags = sorted(r.schedule_lag_ms for r in records)
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Elapsed", f"{elapsed:.0f} s")
    m2.metric("Answered", f"{len(records) - failed}")
    m3.metric("Failed", f"{failed}")
    m4.metric("Planned", "closed loop" if run.schedule_s is None else f"{run.schedule_s.size}")
    m5.metric("Client lag p99", f"{lags[int(0.99 * (len(lags) - 1))]:.1f} ms" if lags else "–")
    if not df.empty:
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            line_chart(
                df,
                "t_s",
                {"target_rps": "target", "sent_rps": "sent", "ok_rps": "answered", "failed_rps": "errors"},
                "Client: requests/s",
                "req/s",
            ),
            key="client_rate",
        )
        c2.plotly_chart(
            line_chart(
                df,
                "t_s",
                {"latency_p50_ms": "p50", "latency_p95_ms": "p95", "latency_p99_ms": "p99"},
                "Client: latency",
                "ms",
            ),
            key="client_latency",
        )
    backend = next((b for b in common.registry().backends if b.name == meta["backend"]), None)
    if backend is not None:
        server_panel(backend, elapsed, meta["server"], meta["service"])
    if not snap.done:
        st.caption("Running… charts refresh every 2 s.")
        return
    if not meta.get("seen_done"):
        meta["seen_done"] = True
        st.rerun()  # the whole page, so Start is enabled again
    result = snap.result
    if snap.state == "failed" or result is None:
        st.error(f"The run failed: {snap.error}. Records so far: {run.plan.out_path}")
        return
    if meta["saved"] is None:
        try:
            meta["saved"] = save_run(result, settings.results_root, meta["run_id"])
        except UserError as exc:
            meta["saved"] = f"not saved: {exc} (records kept at {result.records_path})"
    s = result.summary
    st.subheader("Summary" + (" (stopped early)" if s.interrupted else ""))
    st.write(f"Records and summary saved to `{meta['saved']}`")
    cols = st.columns(4)
    cols[0].metric("Target rate", "–" if s.target_rate_rps is None else f"{s.target_rate_rps:.1f}/s")
    cols[1].metric("Achieved rate", f"{s.achieved_rate_rps:.1f}/s")
    cols[2].metric(
        "Latency p50 / p99",
        "–" if s.latency_ms is None else f"{s.latency_ms.p50_ms:.0f} / {s.latency_ms.p99_ms:.0f} ms",
    )
    cols[3].metric("Errors", f"{s.requests_failed}")
    for warning in s.warnings:
        st.warning(warning)
    with st.expander("Full summary (JSON)"):
        st.json(s.to_dict())


live_panel()
