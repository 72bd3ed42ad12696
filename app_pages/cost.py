"""Cost: pay-per-second Cloud Run versus an always-on machine with the same GPU, with the arithmetic shown."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app_pages import _common as common
from lib import monitoring
from lib.cost import DEFAULT_PRICES, compare, table_from_rows
from lib.errors import UserError
from lib.loadgen import list_saved_runs
from lib.settings import load_settings

common.require_presenter()  # before anything else: see app_pages/_common.py

settings = load_settings()

st.title("Cost: Cloud Run versus always-on")
st.caption(
    "Cloud Run bills GPU instances per second while they exist; a GCE or GKE machine bills every hour it "
    "is up. The table holds list prices as of a date: edit any cell to use your own."
)

st.subheader("Price table")
as_of = st.date_input("Prices as of", value=DEFAULT_PRICES.as_of)
edited = st.data_editor(
    pd.DataFrame([r.model_dump() for r in DEFAULT_PRICES.rows]),
    num_rows="dynamic",
    key="prices",
    hide_index=True,
)
st.caption(f"Region: {DEFAULT_PRICES.region}. Sources: {DEFAULT_PRICES.source}")
try:
    table = table_from_rows(edited.to_dict("records"), as_of=as_of)
except UserError as exc:
    st.error(str(exc))
    st.stop()

st.subheader("Instance time")
c1, c2 = st.columns(2)
gpu = c1.selectbox("GPU", [r.gpu for r in table.rows])
source = c2.radio(
    "Measured by", ["a saved load run", "Cloud Monitoring (billable instance time)", "hand"], horizontal=True
)
window_s, instance_s = 3600.0, 600.0
if source == "a saved load run":
    try:
        runs = list_saved_runs(settings.results_root)
    except UserError as exc:  # a results bucket that does not exist: say so, the other sources still work
        st.warning(f"Saved load runs unavailable: {exc}")
        runs = []
    if not runs:
        st.info("No saved load runs yet: run one on the Live page, or enter the time by hand.")
    else:
        labels = {f"{r['run_id']} ({r['summary']['achieved_rate_rps']:.1f} req/s)": r for r in runs}
        chosen = labels[st.selectbox("Run", list(labels))]
        header = chosen["header"]
        run_s = float(header["duration_s"]) + float(header.get("warmup_s") or 0)
        instances = st.number_input(
            "Instances up during the run (from the Live page's instance chart)",
            min_value=0.0,
            value=1.0,
            step=1.0,
        )
        window_s = st.number_input("Time window to compare over (s)", min_value=1.0, value=max(run_s, 3600.0))
        instance_s = run_s * instances
        st.caption(
            f"Instance time = {run_s:g} s run x {instances:g} instances = {instance_s:,.0f} s; "
            "outside the run, Cloud Run scaled to zero costs nothing."
        )
elif source.startswith("Cloud Monitoring"):
    service = st.text_input("Cloud Run service")
    minutes = st.number_input("Last N minutes", min_value=1, value=60)
    window_s = minutes * 60.0
    if service and settings.google_cloud_project:
        try:
            now = time.time()
            instance_s = monitoring.billable_instance_seconds(
                monitoring.make_client(settings), settings.google_cloud_project, service, now - window_s, now
            )
            st.caption(f"Billable instance time from Cloud Monitoring: {instance_s:,.0f} s")
        except UserError as exc:
            st.error(str(exc))
            st.stop()
    else:
        st.info("Name the service and set GOOGLE_CLOUD_PROJECT to read its billable instance time.")
else:
    h1, h2 = st.columns(2)
    instance_s = h1.number_input("Instance time (s)", min_value=0.0, value=600.0, step=60.0)
    window_s = h2.number_input("Within a window of (s)", min_value=1.0, value=3600.0, step=60.0)
machines = st.number_input("Always-on machines", min_value=1, value=1)

try:
    result = compare(table.row(gpu), instance_s=instance_s, window_s=window_s, machines=int(machines))
except UserError as exc:
    st.error(str(exc))
    st.stop()

st.subheader("Result")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Cloud Run", f"${result.cloud_run_usd:,.2f}")
m2.metric("Always-on (GCE)", f"${result.always_on_usd:,.2f}")
m3.metric("GKE Standard", f"${result.gke_usd:,.2f}")
m4.metric("Cheaper", result.cheaper)
st.write(
    f"Per month if this pattern repeats: Cloud Run **${result.cloud_run_usd_per_month:,.0f}** "
    "versus always-on "
    f"**${result.always_on_usd_per_month:,.0f}**. Cloud Run stays cheaper while fewer than "
    f"**{result.break_even_mean_instances:.2f}** instances are up on average."
)
st.subheader("The arithmetic")
st.dataframe(
    pd.DataFrame(
        [{"step": s.label, "how": s.formula, "value": s.value, "unit": s.unit} for s in result.steps]
    ),
    hide_index=True,
)
st.caption(f"Prices as of {table.as_of.isoformat()} ({table.currency}); check the sources before quoting.")
