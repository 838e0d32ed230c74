"""The dashboard's server: app.py's pages, plus the route the Train page polls while a run trains
(panels/live.py), behind the guard that keeps no upload of a session that has not signed in and caps what
the others hold (panels/guard.py). `streamlit run serve.py` (./run-app.sh does); `streamlit run app.py` serves
the same pages without the guard, with the Train page rerunning every 2 s instead while a run trains."""

import os

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Route

from panels import guard, live

os.environ[live.MOUNTED_ENV] = live.PATH
app = st.App("app.py", routes=[Route(live.route_path(), live.endpoint)], middleware=[Middleware(guard.UploadGuard)])
