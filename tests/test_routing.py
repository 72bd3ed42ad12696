"""Routing: every run starts at `streamlit_app.py`, which shows presenters six pages and attendees two.

Driven from the entrypoint with `AppTest` and `switch_page`, as a click in the menu would. (The first
request of a fresh server process is the browser test's job: tests/e2e.)
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from testkit import REPO, free_port

pytestmark = pytest.mark.slow

TITLES = {
    "app_pages/classify.py": "What breed is this pet?",
    "app_pages/accuracy.py": "Does tuning help?",
    "app_pages/fleet.py": "Fleet",
    "app_pages/tuning.py": "Tuning",
    "app_pages/live.py": "Live load",
    "app_pages/cost.py": "Cost: Cloud Run versus always-on",
}


@pytest.fixture()
def entrypoint(monkeypatch: pytest.MonkeyPatch):
    def start(mode: str) -> AppTest:
        monkeypatch.setenv("APP_MODE", mode)
        monkeypatch.setenv("LOCAL_MODELS_PORT", str(free_port()))  # no model answers: routing is the point
        return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()

    return start


def test_the_entrypoint_opens_on_classify(entrypoint) -> None:
    at = entrypoint("attendee")
    assert [t.value for t in at.title] == [TITLES["app_pages/classify.py"]] and not at.exception


@pytest.mark.parametrize("page", list(TITLES))
def test_presenters_reach_every_page_through_the_menu(entrypoint, page: str) -> None:
    at = entrypoint("presenter")
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert TITLES[page] in [t.value for t in at.title]


def test_attendees_have_classify_and_accuracy_and_nothing_else(entrypoint) -> None:
    at = entrypoint("attendee")
    at.switch_page("app_pages/accuracy.py").run()
    assert [t.value for t in at.title] == [TITLES["app_pages/accuracy.py"]]
    with pytest.raises(ValueError, match="Could not find a navigation page") as refused:
        at.switch_page("app_pages/fleet.py")
    known = re.search(r"Known pages: \[(.*)\]", str(refused.value)).group(1)  # type: ignore[union-attr]
    assert [p.strip(" '").rsplit("/", 1)[-1] for p in known.split(",")] == ["classify.py", "accuracy.py"]


def test_no_pages_folder_beside_the_entrypoint() -> None:
    """Streamlit routes the first run of a fresh process by a `pages/` folder beside the entrypoint (the
    legacy multipage mode) until some session calls `st.navigation`: the app's pages live in `app_pages/`."""
    assert not (REPO / "pages").exists()
    assert sorted(p.name for p in (REPO / "app_pages").glob("*.py") if not p.name.startswith("_")) == sorted(
        p.rsplit("/", 1)[-1] for p in TITLES)
