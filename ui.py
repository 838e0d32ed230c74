"""Streamlit helpers shared by the pages: the process-wide store and job manager, run labels, pickers."""

from __future__ import annotations

import time

import streamlit as st
import torch

from nnapp.data import CLASS_NAMES, load
from nnapp.jobs import JobManager
from nnapp.store import Run, Store, default_home

# Training runs in processes of its own, so this process only ever predicts one digit at a time.
# Streamlit runs each rerun in a fresh thread, and a fresh thread's first multi-threaded torch op
# starts a new OpenMP team: about 40 ms, every time. One thread is also the fastest for one digit.
torch.set_num_threads(1)

CHART_STEPS = 800  # per-step points drawn in a curve; longer runs are thinned evenly

# Plain symbols, not emoji: they render in select boxes and on machines without an emoji font.
STATUS_ICONS = {
    "queued": "…",
    "running": "▶",
    "done": "✓",
    "failed": "✗",
    "cancelled": "■",
    "diverged": "↯",
    "interrupted": "!",
}


@st.cache_resource
def _store(home: str) -> Store:
    return Store(home)


@st.cache_resource
def _jobs(home: str) -> JobManager:
    return JobManager(_store(home))


def store() -> Store:
    """The run store under NNAPP_HOME (./runs by default), one per process."""
    return _store(str(default_home().resolve()))


def jobs() -> JobManager:
    """The process-wide job manager: every browser tab shares it."""
    return _jobs(str(default_home().resolve()))


@st.cache_data(show_spinner="Loading the data set…", max_entries=3)
def test_images(dataset: str):
    """Test images (uint8 N×28×28) and labels as numpy arrays, for galleries."""
    images = load(dataset)
    return images.test_x.numpy(), images.test_y.numpy()


def class_names(dataset: str) -> list[str]:
    return CLASS_NAMES.get(dataset, [str(i) for i in range(10)])


def run_label(run: Run) -> str:
    acc = f" · {run.accuracy * 100:.2f}%" if run.accuracy is not None else ""
    return f"{STATUS_ICONS.get(run.status, '')} {run.key[:8]} · {run.config.describe()}{acc}"


def ago(t: float | None) -> str:
    if not t:
        return "-"
    s = time.time() - t
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f} min ago"
    if s < 86400:
        return f"{s / 3600:.1f} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def pick_run(runs: list[Run], key: str, label: str = "Run", default: str | None = None) -> Run | None:
    """A selectbox over runs; `default` is a run key to preselect."""
    if not runs:
        return None
    keys = [r.key for r in runs]
    index = keys.index(default) if default in keys else 0
    by_key = {r.key: r for r in runs}
    chosen = st.selectbox(label, keys, index=index, format_func=lambda k: run_label(by_key[k]), key=key)
    return by_key[chosen]


def open_results(key: str) -> None:
    st.session_state["results_run"] = key
    st.switch_page("views/results.py")


def open_playground(key: str) -> None:
    st.session_state["playground_run"] = key
    st.switch_page("views/playground.py")
