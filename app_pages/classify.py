"""Classify: a pet photo in (upload, camera or a sample), one or several backends, the breed out."""

from __future__ import annotations

import random

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from app_pages import _common as common
from lib.breeds import UNKNOWN, display_name, species_of
from lib.errors import UserError
from lib.images import ImageError, open_image

HINTS = {
    "connect": "The backend is not reachable. Is its server running?",
    "timeout": "The backend took too long to answer.",
    "cold_start": "The backend is starting up (cold start). Try again in a few seconds.",
    "rate_limited": "The backend is busy (rate limited). Try again in a moment.",
    "image": "This file cannot be used as a photo.",
    "auth": "Credentials are missing for this backend.",
}


settings = common.settings()


def checked_bytes(upload: UploadedFile | None) -> bytes | None:
    """The upload's bytes if it is within UPLOAD_MAX_MB (checked on the server before anything decodes it)."""
    if upload is None:
        return None
    limit = common.image_limits().max_bytes
    if upload.size > limit:
        st.error(f"This file is {upload.size / 2**20:.1f} MB; "
                 f"photos up to {settings.upload_max_mb} MB are accepted.")
        return None
    return upload.getvalue()


def remember(name: str, value: str | None) -> None:
    """Keep a choice in the query string (names and ids only: never a token, never a URL)."""
    if value:
        st.query_params[name] = value
    elif name in st.query_params:
        del st.query_params[name]


SOURCES = ["Upload", "Camera", "Sample photos"]
if not st.session_state.get("restored"):  # first run of this session: a reload restores the last choice
    st.session_state["restored"] = True
    if st.query_params.get("source") in SOURCES:
        st.session_state["source"] = st.query_params["source"]
    wanted = st.query_params.get("photo")
    if wanted and any(p.id == wanted for p in common.sample_photos()):
        st.session_state["sample-photo"] = wanted
        st.session_state["sample-breed"] = next(p.breed for p in common.sample_photos() if p.id == wanted)

st.title("What breed is this pet?")
st.caption("Upload a photo of a cat or a dog, pick one or more models, and compare their answers.")

left, right = st.columns([3, 2], gap="large")

with right:
    st.subheader("Models")
    # Backend names (never URLs) ride in the query string so a reload or reconnect keeps the choice.
    from_url = tuple(n for n in st.query_params.get("backends", "").split(",") if n)
    chosen = common.backend_picker("classify-backends", default=from_url or ("pets-base", "pets-tuned"))
    common.show_registry_problems()
    remember("backends", ",".join(b.name for b in chosen))
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
        if common.is_presenter() and st.button("Start the local model server", key="start-local"):
            with st.spinner("Starting the local model server..."):
                try:
                    common.start_local_models()  # it stops when this dashboard does
                except (RuntimeError, UserError) as exc:
                    st.error(f"It did not start: {exc}")
                else:
                    st.rerun()

with left:
    source = st.radio("Photo", SOURCES, horizontal=True, key="source", label_visibility="collapsed")
    remember("source", None if source == "Upload" else source)
    image: bytes | None = None
    truth: str | None = None
    if source == "Upload":
        upload = st.file_uploader("Upload a pet photo", type=["jpg", "jpeg", "png", "webp", "gif", "bmp"],
                                  key="upload")
        image = checked_bytes(upload)
    elif source == "Camera":
        shot = st.camera_input("Take a photo of your pet", key="camera")
        image = checked_bytes(shot)
    else:
        photos = common.sample_photos()
        if not photos:
            st.info(f"No sample photos: {common.sample_photos_problem()}")
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
            remember("photo", picked.id)
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
    # A rerun of the same photo and models is answered from the cache: it costs no request and no token.
    job = (common.digest(image), tuple(b.name for b in chosen), constrained)
    done = st.session_state.setdefault("classified", set())
    verdict = common.allow_classification() if job not in done else None
    if verdict is not None and not verdict.allowed:
        st.warning(f"You're going too fast — try again in {verdict.wait_s} s.")
        st.stop()
    done.add(job)  # paid for now: a rerun that interrupts this one (a second upload event) is not charged again
    with st.spinner("Asking the models..."):
        predictions = common.classify(image, tuple(chosen), constrained)
    if not any(p.ok for p in predictions):
        done.discard(job)  # nothing was answered: asking again is a new request
    st.subheader("Answers")
    cols = st.columns(len(predictions))
    for col, p in zip(cols, predictions, strict=True):
        with col:
            if p.ok:
                mark = "" if truth is None else (" ✅" if p.breed == truth else " ❌")
                name = display_name(p.breed) if p.breed != UNKNOWN else "Not a breed I know"
                st.metric(p.backend, name + mark)
                species = species_of(p.breed) if p.breed != UNKNOWN else None
                st.caption(f"{species or 'unknown species'} · {p.latency_ms:.0f} ms"
                           + (f" · {p.attempts} attempts" if p.attempts > 1 else ""))
                st.code(p.raw or "(empty answer)", language=None)
            else:
                st.metric(p.backend, "No answer")
                st.error(f"{HINTS.get(p.error_kind or '', 'The backend failed.')} {p.error}")
elif image is not None:
    st.warning("Pick at least one model.")
