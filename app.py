"""nnapp: build, train, watch and test neural networks: the pages. `streamlit run serve.py` serves them (./run-app.sh)."""

import streamlit as st

import ui
from nnapp.errors import DataError, StoreError

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")
ui.configure_process()
allowed = ui.gate()  # every page is behind it: no page runs for a session that has not signed in
# The navigation is set up either way, so that a link to a page (/results?run=KEY) still leads there after signing in.
page = st.navigation(ui.navigation(), position="sidebar" if allowed else "hidden")
if allowed:
    # Progress bars jump to each new value: the bar's transition cost a browser on the same machine about
    # 0.09 CPU-s per refresh (a page refreshing a bar each second: 0.127 against 0.057 CPU-s a second),
    # CPU a training beside it needs.
    st.html("<style>[data-testid=stProgress] * {transition: none !important; animation: none !important}</style>")
    try:
        page.run()
    except (StoreError, DataError) as err:  # a damaged or read-only store, a data set that cannot load: one sentence
        st.error(str(err))
