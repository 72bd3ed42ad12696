"""Fleet: every backend (models.toml and Cloud Run discovery), its health, GPU and scaling; cold starts."""

from __future__ import annotations

import io
from dataclasses import asdict

import pandas as pd
import streamlit as st

from app_pages import _common as common
from lib.cloudrun import DiscoveredService, load_cold_starts, measure_cold_start_sync, save_cold_start
from lib.data import default_data_dir, list_photos
from lib.errors import UserError
from lib.registry import Backend, filter_backends
from lib.settings import Settings

common.require_presenter()  # before anything else: see app_pages/_common.py

@st.cache_data(ttl=15, show_spinner=False)
def local_health(backends: tuple[Backend, ...]) -> dict[str, str]:
    """Health of models.toml backends (discovered services were probed by discovery)."""
    return {h.backend: ("ok" if h.ok else f"down: {h.error}") for h in common.pool().health(backends, timeout_s=2.0)}


def fleet_rows(backends: list[Backend], services: list[DiscoveredService],
               health: dict[str, str]) -> pd.DataFrame:
    """One row per backend with the settings of the Cloud Run service behind it."""
    by_url = {s.base_url: s for s in services}
    rows = []
    for b in backends:
        svc = by_url.get(b.base_url.rstrip("/"))
        info = svc.info if svc else None
        rows.append({
            "backend": b.name, "base model": b.group, "role": b.role, "source": b.source,
            "region": b.region or (info.region if info else ""),
            "GPU": (f"{info.gpu_type} x{info.gpu_count}" if info and info.gpu_type else ("none" if info else "")),
            "min/max": f"{info.min_instances}/{info.max_instances}" if info else "",
            "concurrency": info.concurrency if info else None,
            "health": svc.health if svc else health.get(b.name, "not probed"),
            "revision": info.latest_ready_revision if info else "",
        })
    return pd.DataFrame(rows)


def sample_photo(settings: Settings) -> bytes:
    """A photo to send for a cold start: the first in the photo folder, else a plain test image (and why)."""
    try:
        return list_photos(default_data_dir(settings.pets_dir), limit=1)[0].path.read_bytes()
    except UserError as exc:
        st.caption(f"Sending a plain test image: {exc}")
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (224, 224), (180, 140, 100)).save(buffer, "JPEG")
    return buffer.getvalue()


settings = common.settings()
st.title("Fleet")
st.caption("Every backend the dashboard can call: models.toml plus the Cloud Run services discovery finds.")

top = st.columns([4, 1])
reg = common.registry(refresh=top[1].button("Rediscover", key="fleet-refresh"))
backends, services = list(reg.backends), list(reg.services)
if reg.discovery == "failed":
    st.warning(reg.problems[0])
elif not settings.google_cloud_project:
    st.info("Set GOOGLE_CLOUD_PROJECT (and CLOUD_RUN_REGIONS) to add Cloud Run services to this list.")

query = top[0].text_input("Search backends", key="fleet-search", placeholder="name, base model, region…")
shown = filter_backends(backends, query)
configured = tuple(b for b in shown if b.source == "models.toml")
rows = fleet_rows(shown, services, local_health(configured) if configured else {})

healthy = sum(s.health == "ok" for s in services)
cols = st.columns(4)
cols[0].metric("Backends", len(backends))
cols[1].metric("Cloud Run services", len(services))
cols[2].metric("Healthy services", healthy)
cols[3].metric("GPU services", sum(1 for s in services if s.info.gpu_type))

grouped = st.toggle("Group by base model", value=False, key="fleet-grouped")
if rows.empty:
    st.write("No backend matches the search.")
elif grouped:
    for group, members in rows.groupby("base model", sort=True):
        with st.expander(f"{group} ({len(members)})"):
            st.dataframe(members.drop(columns=["base model"]), hide_index=True, width="stretch")
else:
    st.dataframe(rows, hide_index=True, width="stretch")

if reg.discovery == "ok" and reg.problems:
    with st.expander(f"{len(reg.problems)} need attention (the other backends work)"):
        for line in reg.problems:
            st.text(line)

st.subheader("Cold start")
if not common.is_presenter():
    st.caption("Cold-start measurements are run by the presenter.")
else:
    st.caption("For a service scaled to zero: the time to the first byte and to the full answer of the first "
               "request, then of a warm one. Idle services scale to zero after about 15 minutes.")
    names = [b.name for b in shown]
    choice = st.selectbox("Backend", names, key="fleet-coldstart-backend", index=0 if names else None)
    if st.button("Measure cold start", key="fleet-coldstart", disabled=not choice):
        backend = next(b for b in shown if b.name == choice)
        with st.spinner(f"Sending the first request to {backend.name}…"):
            result = measure_cold_start_sync(backend, None, sample_photo(settings),
                                             max_image_side=settings.max_image_side)
        if result.ok:
            st.success(f"{backend.name}: first answer after {result.cold_total_ms / 1000:.1f} s "
                       f"({result.cold_attempts} attempts), warm answer in {result.warm_total_ms or 0:.0f} ms")
        else:
            st.error(f"{backend.name}: {result.error}")
        try:
            save_cold_start(result, settings)
        except UserError as exc:  # the measurement above still stands
            st.warning(f"Not saved: {exc}")
    try:
        history = load_cold_starts(settings)
    except UserError as exc:  # a results bucket that does not exist: one sentence, the page keeps working
        st.warning(f"Cold-start history unavailable: {exc}")
        history = []
    if history:
        st.dataframe(pd.DataFrame([asdict(r) for r in history]), hide_index=True, width="stretch")
