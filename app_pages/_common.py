"""Streamlit glue shared by the pages: cached loaders, the one backend picker, the kept clients.

Logic stays in `lib/`; here are only the Streamlit caches around it (one registry, one client pool,
one local model server per dashboard process) and widgets every page shares.
"""

from __future__ import annotations

import atexit
import hashlib
import subprocess
import uuid
from pathlib import Path

import streamlit as st

from lib import access as access_rules
from lib.access import Rate, RateLimiter, Verdict
from lib.client import ClientPool, Health, Prediction
from lib.data import GET_PHOTOS, Photo, default_data_dir, list_photos
from lib.errors import UserError
from lib.images import ImageLimits
from lib.local import start_local_server, stop_process
from lib.registry import Backend, Registry, filter_backends, group_by_server, load_backends
from lib.settings import Settings, load_settings

__all__ = [
    "settings", "registry", "backends", "pool", "auth_headers", "health", "classify", "sample_photos",
    "sample_photos_problem", "thumbnail", "backend_picker", "show_registry_problems", "start_local_models",
    "image_limits", "digest", "access",
    "is_presenter", "require_presenter", "presenter_sign_in", "allow_classification", "session_id",
]

PICKER_SEARCH_AT = 12  # more backends than this: narrow by server and kind before picking
KIND_LABELS = {"all": "all", "base": "base models", "tuned": "tuned / adapters"}


@st.cache_resource
def settings() -> Settings:
    """Settings from the environment, read once per process."""
    return load_settings()


@st.cache_data(ttl=60, show_spinner="Looking for backends…")
def _registry(refresh: int) -> Registry:
    return load_backends(settings(), refresh=refresh > 0)


def registry(*, refresh: bool = False) -> Registry:
    """The one registry (models.toml plus Cloud Run discovery), shared by every page's picker and Fleet.

    Discovery keeps its own five-minute cache on disk; `refresh=True` (Fleet's "Rediscover") asks again.
    """
    if refresh:
        _registry.clear()
        st.session_state["_registry-refresh"] = st.session_state.get("_registry-refresh", 0) + 1
    return _registry(st.session_state.get("_registry-refresh", 0))


def backends() -> list[Backend]:
    """Every backend the dashboard may call."""
    return list(registry().backends)


def _close_pool(pool: ClientPool) -> None:
    pool.close()


@st.cache_resource(on_release=_close_pool)
def pool() -> ClientPool:
    """One client per backend for the life of this dashboard process, closed when it exits."""
    kept = ClientPool(max_image_side=settings().max_image_side)
    atexit.register(kept.close)
    return kept


@st.cache_data(ttl=5, show_spinner=False)
def health(chosen: tuple[Backend, ...]) -> dict[str, Health]:
    """Health of the chosen backends, re-probed at most every 5 s, through the kept clients."""
    return {h.backend: h for h in pool().health(chosen, timeout_s=2.0)}


def auth_headers(backend: Backend) -> dict[str, str]:
    """The Authorization header `backend` needs, from its kept client (a Google ID token once per service)."""
    kept = pool()
    try:
        return kept.run(kept.client(backend).auth_headers())
    except PermissionError as exc:
        raise UserError(f"credentials for {backend.name}: {exc}") from None


def digest(data: bytes) -> str:
    """Short content hash used as a cache and state key for an image."""
    return hashlib.sha256(data).hexdigest()[:16]


class _NotCached(Exception):
    def __init__(self, results: list[Prediction]) -> None:
        self.results = results


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _classify_cached(image: bytes, chosen: tuple[Backend, ...], constrained: bool) -> list[Prediction]:
    results = pool().classify(chosen, image, constrained=constrained)
    if any(not p.ok for p in results):
        raise _NotCached(results)  # exceptions are never cached: a failed backend is asked again next time
    return results


def classify(image: bytes, chosen: tuple[Backend, ...], constrained: bool) -> list[Prediction]:
    """Answers for one photo from several backends; a rerun with the same photo asks nobody again."""
    try:
        return _classify_cached(image, chosen, constrained)
    except _NotCached as failed:
        return failed.results


def _stop_local(proc: subprocess.Popen) -> None:
    stop_process(proc)


@st.cache_resource(on_release=_stop_local, show_spinner=False)
def _local_models(host: str, port: int) -> subprocess.Popen:
    proc = start_local_server(host, port)
    atexit.register(stop_process, proc)
    return proc


def start_local_models() -> None:
    """Start the embedded model server for this dashboard; it stops when the dashboard does."""
    s = settings()
    proc = _local_models(s.local_host, s.local_port)
    if proc.poll() is not None:  # it was started once and has died since: start another
        _local_models.clear()
        _local_models(s.local_host, s.local_port)
    health.clear()


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


def show_registry_problems(where: Registry | None = None) -> None:
    """For presenters: what discovery could not use, one line each (attendees are not shown server details)."""
    reg = where or registry()
    if not reg.problems or not is_presenter():
        return
    with st.expander(f"{len(reg.problems)} backend problem{'s' if len(reg.problems) > 1 else ''} "
                     "(the other backends work)"):
        for line in reg.problems:
            st.text(line)


def _server_label(server: str, members: list[Backend]) -> str:
    tuned = sum(b.role == "tuned" for b in members)
    kind = "adapters" if any(b.source == "cloud-run" for b in members) else "tuned"
    return f"{server} ({len(members) - tuned} base, {tuned} {kind})"


def backend_picker(key: str, *, default: tuple[str, ...] = ("pets-tuned",), multi: bool = True,
                   role: str | None = None) -> list[Backend]:
    """Pick backends from the one registry; with many, narrow by server and by base or tuned, then search.

    Every backend shows what it is ("· base", "· tuned", "· adapter"); `role` keeps only
    base or tuned ones (Tuning picks a base model to tune).
    """
    reg = registry()
    every = [b for b in reg.backends if role is None or b.role == role]
    by_name = {b.name: b for b in every}
    chosen_now = [n for n in st.session_state.get(key, []) if n in by_name] if multi else []
    pool_ = every
    if len(every) > PICKER_SEARCH_AT:
        servers = group_by_server(every)
        labels = {"All servers": f"All servers ({len(every)} backends)"}
        labels |= {name: _server_label(name, members) for name, members in servers.items()}
        left, mid, right = st.columns([2, 1, 2])
        server = left.selectbox("Server", list(labels), format_func=labels.__getitem__, key=f"{key}-server")
        kinds = ["all", "base", "tuned"] if role is None else [role]
        kind = mid.selectbox("Kind", kinds, key=f"{key}-kind", format_func=lambda k: KIND_LABELS.get(k, k))
        query = right.text_input("Search", key=f"{key}-search", placeholder="name, model, region…")
        pool_ = [b for members in servers.values() for b in members] if server == "All servers" else servers[server]
        pool_ = [b for b in pool_ if kind == "all" or b.role == kind]
        pool_ = filter_backends(pool_, query)
        st.caption(f"{len(pool_)} of {len(every)} backends match.")
    names = [b.name for b in pool_]
    # What is already picked stays pickable, whatever the filters show now.
    options = names + [n for n in chosen_now if n not in names]

    def fmt(name: str) -> str:
        return by_name[name].label

    if multi:
        picked = st.multiselect("Backends", options, default=None if key in st.session_state else
                                [n for n in default if n in by_name], key=key, format_func=fmt,
                                placeholder="Type to search backends")
        return [by_name[n] for n in picked]
    index = next((i for i, n in enumerate(options) if n in default), 0)
    choice = st.selectbox("Backend", options, index=index if options else None, key=key, format_func=fmt)
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
