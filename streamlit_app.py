"""The dashboard's entry point: it only routes. Pages are thin views over `lib/`.

Attendees (the public URL, APP_MODE=attendee) get Classify and Accuracy only; presenters (see
lib/access.py) get every page. A page left out of `st.navigation` cannot be opened by its URL.
"""

import streamlit as st

from pages import _common as common

st.set_page_config(page_title="Pets on Cloud Run", page_icon="🐾", layout="wide")

PUBLIC = [
    st.Page("pages/classify.py", title="Classify", icon="🐾", default=True),
]
PRESENTER: list = [
    st.Page("pages/fleet.py", title="Fleet", icon="🛰️"),
    st.Page("pages/tuning.py", title="Tuning", icon="🎛️"),
]

sections = {"Demo": PUBLIC}
if common.is_presenter():
    if PRESENTER:
        sections["Presenter"] = PRESENTER
else:
    common.presenter_sign_in()
st.navigation(sections).run()
