"""The dashboard's entry point: it only routes. Pages are thin views over `lib/`.

Attendees (the public URL, APP_MODE=attendee) get Classify and Accuracy only; presenters (see
lib/access.py) get every page. Every presenter page also starts with `common.require_presenter()`:
the first run of a fresh process is routed by the pages/ folder, not by this list.
"""

import streamlit as st

from pages import _common as common

st.set_page_config(page_title="Pets on Cloud Run", page_icon="🐾", layout="wide")

PUBLIC = [
    st.Page("pages/classify.py", title="Classify", icon="🐾", default=True),
    st.Page("pages/accuracy.py", title="Accuracy", icon="📊"),
]
PRESENTER: list = [
    st.Page("pages/fleet.py", title="Fleet", icon="🛰️"),
    st.Page("pages/tuning.py", title="Tuning", icon="🎛️"),
    st.Page("pages/live.py", title="Live", icon="📈"),
    st.Page("pages/cost.py", title="Cost", icon="💰"),
]

sections = {"Demo": PUBLIC}
if common.is_presenter():
    if PRESENTER:
        sections["Presenter"] = PRESENTER
else:
    common.presenter_sign_in()
st.navigation(sections).run()
