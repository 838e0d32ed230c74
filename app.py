"""nnapp: build, train, watch and test neural networks. `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")

pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/results.py", title="Results", icon=":material/monitoring:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/playground.py", title="Playground", icon=":material/draw:"),
]
st.navigation(pages).run()
