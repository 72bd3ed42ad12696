"""The dashboard's entry point: it only routes. Pages are thin views over `lib/`."""

import streamlit as st

from pages import _common as common

st.set_page_config(page_title="Pets on Cloud Run", page_icon="🐾", layout="wide")

PUBLIC = [
    st.Page("pages/classify.py", title="Classify", icon="🐾", default=True),
]
PRESENTER: list = []

sections = {"Demo": PUBLIC}
if common.settings().app_mode == "presenter" and PRESENTER:
    sections["Presenter"] = PRESENTER
st.navigation(sections).run()
