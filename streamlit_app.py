"""The dashboard's entry point: it only routes. Pages are thin views over `lib/` in `app_pages/`.

Attendees (the public URL, APP_MODE=attendee) get Classify and Accuracy only; presenters (see
lib/access) get every page. The pages live in `app_pages/`, not `pages/`: Streamlit routes the first
run of a fresh process by a `pages/` folder beside the entrypoint before `st.navigation` takes over.
Every presenter page still starts with `common.require_presenter()`, a second lock on the same door.
"""

import streamlit as st

from app_pages import _common as common

st.set_page_config(page_title="Pets on Cloud Run", page_icon="🐾", layout="wide")

PUBLIC = [
    st.Page("app_pages/classify.py", title="Classify", icon="🐾", default=True),
    st.Page("app_pages/accuracy.py", title="Accuracy", icon="📊"),
]
PRESENTER: list = [
    st.Page("app_pages/fleet.py", title="Fleet", icon="🛰️"),
    st.Page("app_pages/tuning.py", title="Tuning", icon="🎛️"),
    st.Page("app_pages/live.py", title="Live", icon="📈"),
    st.Page("app_pages/cost.py", title="Cost", icon="💰"),
]

sections = {"Demo": PUBLIC}
if common.is_presenter():
    if PRESENTER:
        sections["Presenter"] = PRESENTER
else:
    common.presenter_sign_in()
st.navigation(sections).run()
