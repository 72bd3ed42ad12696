"""Streamlit glue shared by the pages: cached loaders and the backend picker. Logic stays in `lib/`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from lib.backends import Health, Prediction, check_health_sync, classify_sync
from lib.data import Photo, list_photos
from lib.errors import UserError
from lib.images import ImageLimits
from lib.registry import Backend, group_by_base_model, load_registry
from lib.settings import Settings, load_settings

__all__ = [
    "settings", "backends", "health", "classify", "sample_photos", "thumbnail", "backend_picker", "image_limits",
    "digest",
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
def sample_photos() -> list[Photo]:
    """Labelled photos from PETS_DIR, or an empty list when it is not set."""
    folder = settings().pets_dir
    if folder is None:
        return []
    try:
        return list_photos(folder)
    except UserError:
        return []


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
