"""Every presenter page refuses attendees by itself, whatever routed the run to it.

`st.navigation` leaves them out of an attendee's app; `AppTest.from_file(page)` runs a page file
directly, the way a stray route would, and each page must still say no.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from dockerimage import REPO
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow

PUBLIC = {"classify.py", "accuracy.py"}  # what attendees may open (streamlit_app.PUBLIC)
PRESENTER_PAGES = sorted(p.name for p in (REPO / "app_pages").glob("*.py")
                         if not p.name.startswith("_") and p.name not in PUBLIC)


def test_there_are_presenter_pages_to_check() -> None:
    assert "fleet.py" in PRESENTER_PAGES


@pytest.mark.parametrize("name", PRESENTER_PAGES)
def test_an_attendee_who_reaches_a_presenter_page_gets_one_sentence(name: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APP_MODE", "attendee")
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path))
    monkeypatch.setenv("LOCAL_MODELS_PORT", "9")  # nothing is called anyway
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app_pages" / name), default_timeout=60).run()
    assert not at.exception
    refusal = ["This page is for the presenter. Attendees can use Classify and Accuracy."]
    assert [e.value for e in at.error] == refusal, (
        f"app_pages/{name} must call `common.require_presenter()` before anything else (see app_pages/_common.py)")
    assert len(at.main.children) == 1, f"app_pages/{name} shows more than the refusal to an attendee"
    assert not at.button and not at.metric and not at.dataframe
