"""nnapp: build, train, watch and test neural networks: the pages. `streamlit run serve.py` serves them (./run-app.sh)."""

import streamlit as st

import ui
from nnapp.system.errors import DataError, StoreError

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")
ui.configure_process()
allowed = ui.gate()  # every page is behind it: no page runs for a session that has not signed in
# The navigation is set up either way, so that a link to a page (/results?run=KEY) still leads there after signing in.
page = st.navigation(ui.navigation(), position=ui.navigation_position(allowed))
if allowed:
    ui.name_ui()
    try:
        page.run()
    except (StoreError, DataError) as err:  # a damaged or read-only store, a data set that cannot load: one sentence
        st.error(str(err))
