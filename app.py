"""nnapp: build, train, watch and test neural networks. `streamlit run app.py`."""

import streamlit as st

import ui

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")
ui.configure_process()
st.navigation(ui.navigation()).run()
