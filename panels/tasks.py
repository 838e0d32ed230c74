"""What the panels share about background tasks."""

from __future__ import annotations

import streamlit as st

import ui
from nnapp.engine.states import Status


@st.fragment(run_every=1.0)
def task_progress(key: str, what: str, cancel_key: str) -> None:
    """A task's progress bar and Cancel, redrawn every second; the whole page reruns once it has ended."""
    task = ui.store().tasks.get(key)
    if task is None or not task.is_active():
        st.rerun()
    p = task.progress or {}
    text = p.get("text") or ("waiting for the job before it" if task.status == Status.QUEUED else "starting")
    st.progress(p.get("done", 0) / max(p.get("total", 1), 1), text=f"{what}: {text}")
    if st.button("Cancel", key=cancel_key):
        ui.jobs().cancel(key)
