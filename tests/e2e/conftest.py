"""Browser tests: the dashboard started with the Docker image's own start command, driven by Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import dockerimage
import pytest
from support import OUTPUT, PRESENTER, TOKEN, free_port

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _start(tmp: Path, local_server: str, pets: Path, **overrides: str) -> Iterator[dockerimage.Container]:
    container = dockerimage.start(
        tmp, free_port(), LOCAL_MODELS_PORT=str(urlparse(local_server).port), PETS_DIR=str(pets),
        PRESENTER_TOKEN=TOKEN, PRESENTER_EMAILS=PRESENTER, **overrides)
    try:
        yield container
    finally:
        container.stop()
        shutil.copy(container.log, OUTPUT / f"{tmp.name}.log")


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory: pytest.TempPathFactory, local_server: str, pets: Path) -> Path:
    """A results root with a real baseline and tuned evaluation (40 photos each) for the Accuracy page."""
    root = tmp_path_factory.mktemp("results")
    env = {**os.environ, "LOCAL_MODELS_PORT": str(urlparse(local_server).port), "PETS_DIR": str(pets)}
    for backend in ("pets-base", "pets-tuned"):
        subprocess.run([sys.executable, "-m", "lib", "eval", "--backend", backend, "--limit", "40", "--out", str(root),
                        "--quiet"], cwd=dockerimage.REPO, env=env, check=True, capture_output=True, timeout=300)
    return root


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, local_server: str, pets: Path, browser,
              evaluated: Path) -> Iterator[str]:
    """The attendee dashboard (the image's defaults), with small limits so abuse shows quickly."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for container in _start(
            tmp_path_factory.mktemp("attendee"), local_server, pets, RESULTS_ROOT=str(evaluated), UPLOAD_MAX_MB="1",
            RATE_SESSION_BURST="5", RATE_SESSION_PER_MIN="1", RATE_CLIENT_BURST="20", SIGN_IN_ATTEMPTS="3"):
        yield container.url


@pytest.fixture(scope="session")
def iap_dashboard(tmp_path_factory: pytest.TempPathFactory, local_server: str, pets: Path, browser) -> Iterator[str]:
    """The same image configured as if IAP were in front (TRUST_IAP=true)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for container in _start(tmp_path_factory.mktemp("iap"), local_server, pets, TRUST_IAP="true"):
        yield container.url


@pytest.fixture()
def fresh_dashboard(tmp_path: Path, local_server: str, pets: Path) -> Iterator[str]:
    """A dashboard nobody has visited yet (a new Cloud Run instance)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    yield from (c.url for c in _start(tmp_path, local_server, pets))


@pytest.fixture(scope="session")
def browser():
    # Waits, not timings: on a busy 2-core machine a first answer (an ID token minted, a model warmed) can
    # take longer than Playwright's 5 s default; nothing here measures speed (benchmarks/ do).
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package with apt-get")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def new_page(browser, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """Open pages in fresh browser contexts (one Streamlit session each); screenshot them when the test ends."""
    contexts = []

    def make(headers: dict[str, str] | None = None):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers=headers or {})
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for i, context in enumerate(contexts):
        for j, page in enumerate(context.pages):
            with contextlib.suppress(Exception):  # a page that crashed still lets the other screenshots be taken
                page.screenshot(path=str(OUTPUT / f"{request.node.name}-{i}{j}.png"), full_page=True)
        context.close()
