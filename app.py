"""nnapp: build, train, watch and test neural networks: the pages. `streamlit run serve.py` serves them (./run-app.sh)."""

import streamlit as st

import ui
from nnapp.system.errors import DataError, StoreError
from nnapp.system.files import os_error_text
from panels import guard

st.set_page_config(page_title="nnapp", page_icon=":material/neurology:", layout="wide")
ui.configure_process()
allowed = ui.gate()  # every page is behind it: no page runs for a session that has not signed in
guard.signed_in(allowed)  # and the server keeps no upload of a session that has not (panels/guard.py)
# The navigation is set up either way, so that a link to a page (/results?run=KEY) still leads there after signing in.
page = st.navigation(ui.navigation(), position=ui.navigation_position(allowed))
if allowed:
    ui.name_ui()
    try:
        page.run()
    except (StoreError, DataError) as err:  # a damaged or read-only store, a data set that cannot load: one sentence
        st.error(ui.escaped(err))
    except OSError as err:  # a full disk or a read-only folder under any page's write: one sentence, never a traceback
        st.error(f"Could not write or read a file: {ui.escaped(os_error_text(err))}.")
