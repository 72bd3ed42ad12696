"""A new user, in a real browser, on a fresh clone with no sample photos beside it: `make data`, `make run`,
then the first visit goes straight to `/accuracy`.

What they must see: the app's own menu and a report at once; Tuning and Accuracy agreeing on the same
model; and on Classify, a Cloud Run service and its LoRA adapter that discovery found (the local Admin
API, with a loopback OpenAI-compatible service behind the discovered URL), answering.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect
from support import OUTPUT

from testkit import REPO, free_port
from testkit.cloudrun_fakes import PROJECT, REGIONS, FakeCloudRun, ModelServers, add_fleet, write_service_account
from testkit.dataset_server import ArchiveServer, build_mini_dataset

pytestmark = pytest.mark.slow

VENV = Path(sys.executable).parent.parent  # the environment running these tests: nothing gets installed


def make(clone: Path, *args: str) -> list[str]:
    """The command line of `make TARGET` in the clone, with the test environment as its venv."""
    return ["make", "-C", str(clone), f"VENV={VENV}", *args]


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """`git clone` of this repository, as a new user makes it (no results/, no data/, no photos beside it)."""
    target = tmp_path / "pets"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True, timeout=120)
    assert not (target.parent / "shared").exists()
    # The clone's requirement files are newer than the test venv's install stamp: say they are old, so
    # `make` sees the dependencies as installed (they are: this interpreter has them).
    for name in ("requirements.txt", "requirements-models.txt", "requirements-train.txt", "requirements-dev.txt"):
        os.utime(target / name, (0, 0))
    return target


@pytest.fixture()
def fleet(tmp_path: Path, fake_run: FakeCloudRun, model_servers: ModelServers) -> dict[str, str]:
    """One Cloud Run service with one LoRA adapter, and the environment that points the dashboard at them."""
    add_fleet(fake_run, model_servers, 1, adapters=1)
    model_servers.answers.update({"google/gemma-3-4b-it": "This looks like a Pug.", "pets-lora-000-0": "Pug"})
    key = write_service_account(tmp_path / "sa.json", model_servers.token_uri)
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(key), "NO_GCE_CHECK": "True",
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "CLOUD_RUN_API_ENDPOINT": fake_run.endpoint,
            "GOOGLE_CLOUD_PROJECT": PROJECT, "CLOUD_RUN_REGION": REGIONS[0], "CLOUD_RUN_REGIONS": ",".join(REGIONS)}


@pytest.fixture()
def running(clone: Path, fleet: dict[str, str], pets: Path, tmp_path: Path) -> Iterator[str]:
    """`make data` from a loopback copy of the dataset's site, then `make run`; yields the dashboard's URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("PETS_DIR", "RESULTS_ROOT", "APP_MODE")}
    dataset = build_mini_dataset(pets, per_breed=3)
    with ArchiveServer(dataset.archives, cut_first={"images.tar.gz"}) as mirror:
        subprocess.run(make(clone, "data", f"DATA_BASE_URL={mirror.url}", f"DATA_EXPECT={dataset.expect}"),
                       env=env, check=True, timeout=300, capture_output=True)
    assert len(list((clone / "data" / "pets" / "images").glob("*.jpg"))) == 3 * 37

    port, local_port = free_port(), free_port()
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(make(clone, "run", f"PORT={port}", f"LOCAL_PORT={local_port}"),
                                env={**env, **fleet}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, log.read_text()
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "fresh-clone-make-run.log").write_bytes(log.read_bytes())


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"fresh-clone-{name}.png"), full_page=True)


def metric(page: Page, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]', has_text=label)
    return card.locator('[data-testid="stMetricValue"]').inner_text()


def test_make_data_make_run_and_the_first_visit_to_accuracy(browser, running: str, pets: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{running}/accuracy")  # the very first request this server process gets
        page.get_by_role("heading", name="Does tuning help?").wait_for()
        menu = page.locator('[data-testid="stSidebarNav"] a')  # the app's own menu, its pages titled
        expect(menu).to_have_text([re.compile(rf"{title}$") for title in
                                   ("Classify", "Accuracy", "Fleet", "Tuning", "Live", "Cost")])
        expect(page.get_by_text(re.compile(r"^Shipped with the code: made on "))).to_be_visible()
        tuned_on_accuracy = metric(page, "Tuned accuracy · pets-tuned")
        assert re.fullmatch(r"\d+\.\d%", tuned_on_accuracy)
        assert re.fullmatch(r"\d+\.\d%", metric(page, "Baseline accuracy · pets-base"))
        shot(page, "1-accuracy")

        page.locator('[data-testid="stSidebarNav"]').get_by_text("Tuning").click()
        page.get_by_role("heading", name="Tuning").wait_for()
        held_out = page.locator('[data-testid="stMetric"]', has_text="Held-out accuracy")
        expect(held_out.locator('[data-testid="stMetricValue"]')).to_have_text(tuned_on_accuracy)  # they agree
        expect(held_out.locator('[data-testid="stMetricDelta"]')).to_contain_text(" pts")
        shot(page, "2-tuning")

        page.locator('[data-testid="stSidebarNav"]').get_by_text("Classify").click()
        page.get_by_role("heading", name="What breed is this pet?").wait_for()
        box = page.locator('[data-testid="stMultiSelect"]')
        discovered = ("svc-000/google/gemma-3-4b-it · base", "svc-000/pets-lora-000-0 · adapter")
        for label in discovered:
            box.locator("input").click()
            page.get_by_role("option", name=label).click()
            page.keyboard.press("Escape")
        expect(box.locator('[data-tag] > span[title]')).to_have_text(
            ["pets-base · base", "pets-tuned · tuned", *discovered])
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(pets / "pug_112.jpg"))
        answer = page.locator('[data-testid="stMetric"]', has_text="svc-000/pets-lora-000-0")
        expect(answer.locator('[data-testid="stMetricValue"]')).to_have_text("Pug")
        expect(page.locator('[data-testid="stMetric"]', has_text="svc-000/google/gemma-3-4b-it")
               .locator('[data-testid="stMetricValue"]')).to_have_text("Pug")
        expect(page.locator('[data-testid="stMetric"]', has_text="pets-tuned")
               .locator('[data-testid="stMetricValue"]')).to_have_text("Pug")
        shot(page, "3-classify")

        page.get_by_text("Sample photos").click()  # the photos `make data` brought
        expect(page.get_by_role("button", name="Random photo")).to_be_visible()
    except BaseException:
        shot(page, "failed")  # what the page showed when it went wrong
        raise
    finally:
        context.close()
