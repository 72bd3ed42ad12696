"""Streamlit glue shared by the pages: cached loaders and the backend picker. Logic stays in `lib/`."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import streamlit as st

from lib import access as access_rules
from lib.client import Health, Prediction, check_health_sync, classify_sync
from lib.data import GET_PHOTOS, Photo, default_data_dir, list_photos
from lib.errors import UserError
from lib.images import ImageLimits
from lib.access import Rate, RateLimiter, Verdict
from lib.registry import Backend, group_by_base_model, load_registry
from lib.settings import Settings, load_settings

__all__ = [
    "settings", "backends", "health", "classify", "sample_photos", "sample_photos_problem", "thumbnail",
    "backend_picker", "image_limits",
    "digest", "access", "is_presenter", "require_presenter", "presenter_sign_in", "allow_classification",
    "session_id",
]


@st.cache_resource
def settings() -> Settings:
    """Settings from the environment, read once per process."""
    return load_settings()


@st.cache_data(ttl=30, show_spinner=False)
def backends() -> list[Backend]:
    """Every backend the dashboard may call: models.toml (plus Cloud Run discovery where configured)."""
    return load_registry(settings=settings())


@st.cache_data(ttl=5, show_spinner=False)
def health(chosen: tuple[Backend, ...]) -> dict[str, Health]:
    """Health of the chosen backends, re-probed at most every 5 s."""
    return {h.backend: h for h in check_health_sync(chosen, timeout_s=2.0)}


def digest(data: bytes) -> str:
    """Short content hash used as a cache and state key for an image."""
    return hashlib.sha256(data).hexdigest()[:16]


class _NotCached(Exception):
    def __init__(self, results: list[Prediction]) -> None:
        self.results = results


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _classify_cached(image: bytes, chosen: tuple[Backend, ...], constrained: bool) -> list[Prediction]:
    results = classify_sync(chosen, image, constrained=constrained, max_image_side=settings().max_image_side)
    if any(not p.ok for p in results):
        raise _NotCached(results)  # exceptions are never cached: a failed backend is asked again next time
    return results


def classify(image: bytes, chosen: tuple[Backend, ...], constrained: bool) -> list[Prediction]:
    """Answers for one photo from several backends; a rerun with the same photo asks nobody again."""
    try:
        return _classify_cached(image, chosen, constrained)
    except _NotCached as failed:
        return failed.results


@st.cache_data(ttl=600, show_spinner=False)
def _sample_photos(folder: str) -> tuple[list[Photo], str | None]:
    try:
        return list_photos(folder), None
    except UserError as exc:
        return [], str(exc)


def sample_photos() -> list[Photo]:
    """Labelled photos from the photo folder (PETS_DIR, else data/pets, else ../shared/pets); [] if there are none."""
    return _sample_photos(str(default_data_dir(settings().pets_dir)))[0]


def sample_photos_problem() -> str:
    """Why there are no sample photos (a missing folder, a half-finished `make data`) and how to get them."""
    return _sample_photos(str(default_data_dir(settings().pets_dir)))[1] or GET_PHOTOS


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail(path: Path, side: int = 160) -> bytes:
    """A small JPEG for galleries."""
    from lib.images import prepare_jpeg

    return prepare_jpeg(Path(path).read_bytes(), max_side=side, quality=80)


def image_limits() -> ImageLimits:
    """The upload limits, from settings."""
    return ImageLimits(max_bytes=settings().upload_max_mb * 1024 * 1024)


def backend_picker(key: str, *, default: tuple[str, ...] = ("pets-tuned",), multi: bool = True) -> list[Backend]:
    """Pick backends by name; with many backends, narrow by base model first (search is built in)."""
    every = backends()
    groups = group_by_base_model(every)
    if len(groups) > 1:
        group = st.selectbox("Base model", ["All", *groups], key=f"{key}-group",
                             help=f"{len(every)} backends in {len(groups)} groups")
        pool = every if group == "All" else groups[group]
    else:
        pool = every
    names = [b.name for b in pool]
    by_name = {b.name: b for b in pool}
    if multi:
        chosen = st.multiselect("Backends", names, default=[n for n in default if n in by_name], key=key,
                                placeholder="Type to search backends")
        return [by_name[n] for n in chosen]
    index = next((i for i, n in enumerate(names) if n in default), 0)
    choice = st.selectbox("Backend", names, index=index if names else None, key=key)
    return [by_name[choice]] if choice else []


# --- Access and abuse limits (rules in lib/access.py and lib/ratelimit.py; only the Streamlit glue here) ---

_TOKEN_OK = "_presenter-by-token"  # set only after a correct token; the token itself is never stored


@st.cache_resource
def _limiters() -> dict[str, RateLimiter]:
    """One set of buckets per process, shared by every session (thread-safe)."""
    s = settings()
    return {
        "classify": RateLimiter({"session": Rate(s.rate_session_per_min, s.rate_session_burst),
                                 "client": Rate(s.rate_client_per_min, s.rate_client_burst)}),
        "sign-in": RateLimiter(
            {"client": Rate(s.sign_in_attempts * 60 / s.sign_in_window_s, s.sign_in_attempts)}),
    }


def session_id() -> str:
    """A random id for this browser session (kept across reruns and WebSocket reconnects)."""
    return st.session_state.setdefault("_session-id", uuid.uuid4().hex)


def _headers() -> dict[str, str]:
    try:
        return dict(st.context.headers)
    except Exception:  # no request behind this run (AppTest)
        return {}


def _client() -> str:
    try:
        peer = st.context.ip_address
    except Exception:
        peer = None
    return access_rules.client_key(_headers(), session_id(), peer_ip=peer, hops=settings().forwarded_for_hops)


def access() -> access_rules.Access:
    """Presenter or attendee for this visitor (see lib/access.py)."""
    decision = access_rules.decide_access(settings(), _headers())
    if not decision.presenter and st.session_state.get(_TOKEN_OK):
        return access_rules.Access(True, "token", "presenter token")
    return decision


def is_presenter() -> bool:
    """True when this visitor may see every page and start servers, loads, jobs and deploys."""
    return access().presenter


def require_presenter() -> None:
    """First line of every presenter page: an attendee gets one sentence and nothing else.

    `st.navigation` already leaves presenter pages out for attendees; this holds even if a page is
    ever reached another way (AppTest runs a page file directly, for one).
    """
    if not is_presenter():
        st.error("This page is for the presenter. Attendees can use Classify and Accuracy.")
        st.stop()


def presenter_sign_in() -> None:
    """A sidebar form for the presenter token: wrong guesses are throttled per client, nothing is echoed."""
    if settings().presenter_token is None:
        return
    with st.sidebar.expander("Presenter sign-in"):
        with st.form("presenter-sign-in", clear_on_submit=True, border=False):
            typed = st.text_input("Presenter token", type="password", key="presenter-token-input")
            submitted = st.form_submit_button("Sign in")
        if not submitted:
            return
        guard = _limiters()["sign-in"]
        keys = {"client": _client()}
        blocked = guard.check(keys)
        if not blocked.allowed:
            st.error(f"Too many wrong tokens from your address. Try again in {blocked.wait_s} s.")
            return
        if not typed:
            st.warning("Type the presenter token first.")
            return
        if access_rules.token_matches(settings(), typed):
            st.session_state[_TOKEN_OK] = True
            st.rerun()
        guard.take(keys)
        left = guard.check(keys)
        st.error("That presenter token is not right."
                 + ("" if left.allowed else f" Too many wrong tokens: try again in {left.wait_s} s."))


def allow_classification() -> Verdict:
    """Take one classification from this session's and this client's buckets (presenters are not limited)."""
    if is_presenter():
        return Verdict(True)
    return _limiters()["classify"].take({"session": session_id(), "client": _client()})
