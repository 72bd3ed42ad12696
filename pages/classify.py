"""Classify: a pet photo in (upload, camera or a sample), one or several backends, the breed out."""

from __future__ import annotations

import random

import streamlit as st

from lib.breeds import UNKNOWN, display_name, species_of
from lib.errors import UserError
from lib.images import ImageError, open_image
from lib.localprocess import start_local_server
from pages import _common as common

HINTS = {
    "connect": "The backend is not reachable. Is its server running?",
    "timeout": "The backend took too long to answer.",
    "cold_start": "The backend is starting up (cold start). Try again in a few seconds.",
    "rate_limited": "The backend is busy (rate limited). Try again in a moment.",
    "image": "This file cannot be used as a photo.",
    "auth": "Credentials are missing for this backend.",
}

st.title("What breed is this pet?")
st.caption("Upload a photo of a cat or a dog, pick one or more models, and compare their answers.")

settings = common.settings()
left, right = st.columns([3, 2], gap="large")

with right:
    st.subheader("Models")
    chosen = common.backend_picker("classify-backends", default=("pets-base", "pets-tuned"))
    constrained = st.toggle("Constrained answer (JSON schema of the 37 breeds)", value=False, key="constrained",
                            help="Ask the model to answer with one of the 37 breed ids, where it supports it.")
    status = common.health(tuple(chosen)) if chosen else {}
    for backend in chosen:
        h = status.get(backend.name)
        if h and h.ok:
            st.markdown(f":green[●] **{backend.name}** ready ({h.latency_ms:.0f} ms)")
        elif h:
            st.markdown(f":red[●] **{backend.name}**: {h.error}")
    down_local = [b for b in chosen if b.family == "local" and not (status.get(b.name) and status[b.name].ok)]
    if down_local:
        st.info(
            "The local model server is not running. Start it in a terminal with "
            f"`python -m lib serve-local --port {settings.local_port}` (or `make run`)."
        )
        if settings.app_mode == "presenter" and st.button("Start the local model server", key="start-local"):
            with st.spinner("Starting the local model server..."):
                try:
                    start_local_server(settings.local_host, settings.local_port)
                except RuntimeError as exc:
                    st.error(f"It did not start: {exc}")
                else:
                    common.health.clear()
                    st.rerun()

with left:
    source = st.radio("Photo", ["Upload", "Camera", "Sample photos"], horizontal=True, key="source",
                      label_visibility="collapsed")
    image: bytes | None = None
    truth: str | None = None
    if source == "Upload":
        upload = st.file_uploader("Upload a pet photo", type=["jpg", "jpeg", "png", "webp", "gif", "bmp"],
                                  key="upload")
        image = upload.getvalue() if upload is not None else None
    elif source == "Camera":
        shot = st.camera_input("Take a photo of your pet", key="camera")
        image = shot.getvalue() if shot is not None else None
    else:
        photos = common.sample_photos()
        if not photos:
            st.info("No sample photos: set PETS_DIR to a folder of Oxford-IIIT Pet photos.")
        else:
            breeds = sorted({p.breed for p in photos}, key=lambda b: display_name(b))
            if st.button("Random photo", key="random"):
                st.session_state["sample-breed"] = random.choice(breeds)
            breed = st.selectbox("Breed", breeds, format_func=display_name, key="sample-breed")
            options = [p for p in photos if p.breed == breed]
            grid = st.columns(min(len(options), 7))
            for i, photo in enumerate(options):
                with grid[i % len(grid)]:
                    st.image(common.thumbnail(photo.path), width="stretch")
                    if st.button("Use", key=f"use-{photo.id}"):
                        st.session_state["sample-photo"] = photo.id
            picked = next((p for p in options if p.id == st.session_state.get("sample-photo")), options[0])
            image, truth = picked.path.read_bytes(), picked.breed
            st.caption(f"Sample: {picked.id} (true breed: {display_name(picked.breed)})")

    if image is not None:
        try:
            if len(image) > common.image_limits().max_bytes:
                raise ImageError(f"The file is {len(image) / 2**20:.1f} MB; the limit is {settings.upload_max_mb} MB.")
            preview = open_image(image, common.image_limits())
        except ImageError as exc:
            st.error(f"{exc}")
            image = None
        else:
            st.image(preview, width=360)

if image is not None and chosen:
    with st.spinner("Asking the models..."):
        predictions = common.classify(image, tuple(chosen), constrained)
    st.subheader("Answers")
    cols = st.columns(len(predictions))
    for col, p in zip(cols, predictions):
        with col:
            if p.ok:
                verdict = "" if truth is None else (" ✅" if p.breed == truth else " ❌")
                name = display_name(p.breed) if p.breed != UNKNOWN else "Not a breed I know"
                st.metric(p.backend, name + verdict)
                species = species_of(p.breed) if p.breed != UNKNOWN else None
                st.caption(f"{species or 'unknown species'} · {p.latency_ms:.0f} ms"
                           + (f" · {p.attempts} attempts" if p.attempts > 1 else ""))
                st.code(p.raw or "(empty answer)", language=None)
            else:
                st.metric(p.backend, "No answer")
                st.error(f"{HINTS.get(p.error_kind or '', 'The backend failed.')} {p.error}")
elif image is not None:
    st.warning("Pick at least one model.")
