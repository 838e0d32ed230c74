"""nnapp: build, train, watch and test neural networks. `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="nnapp", page_icon="🧠", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/results.py", title="Results", icon="📊"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️"),
    st.Page("pages/playground.py", title="Playground", icon="✏️"),
]
st.navigation(pages).run()
