"""The dashboard's server: app.py's pages, plus the route the Train page polls while a run trains
(panels/live.py), behind the guard that keeps no upload of a session that has not signed in and caps what
the others hold (panels/guard.py). `streamlit run serve.py` (./run-app.sh does); `streamlit run app.py` serves
the same pages without the guard, with the Train page rerunning every 2 s instead while a run trains."""

import os
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Route

from nnapp.jobs.warmpool import warm_pool
from panels import guard, live


@asynccontextmanager
async def lifespan(app):
    """A job process warms up (torch, MNIST) as the server starts, while the first visitor reads Home: its one
    click then trains at once. Here, once Streamlit has set its environment: a spare started under another
    one is not used (nnapp.jobs.warmpool)."""
    warm_pool().fill(1)
    yield


os.environ[live.MOUNTED_ENV] = live.PATH
app = st.App(
    "app.py",
    routes=[Route(live.route_path(), live.endpoint)],
    middleware=[Middleware(guard.UploadGuard)],
    lifespan=lifespan,
)
