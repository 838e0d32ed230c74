"""nnapp: build, train, watch and test neural networks. `streamlit run app.py`."""

import streamlit as st

import ui
from nnapp.errors import DataError, StoreError

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")
ui.configure_process()
if ui.gate():  # every page is behind it: no page runs for a session that has not signed in
    try:
        st.navigation(ui.navigation()).run()
    except (StoreError, DataError) as err:  # a damaged or read-only store, a data set that cannot load: one sentence
        st.error(str(err))
