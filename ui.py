"""Streamlit helpers shared by the pages: the page registry, the process-wide store and job manager, pickers."""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from nnapp.data import load
from nnapp.device import set_threads
from nnapp.jobs import JobManager
from nnapp.records import Run
from nnapp.registry import DATASETS
from nnapp.store import Store, default_home

CHART_STEPS = 800  # per-step points drawn in a curve; longer runs are thinned evenly


@dataclass(frozen=True)
class PageSpec:
    path: str  # in views/, not pages/: see the README
    title: str
    icon: str
    default: bool = False


# The one list of pages: app.py's navigation, every switch and link, and the tests read it.
PAGES = {
    "home": PageSpec("views/home.py", "Home", ":material/home:", default=True),
    "train": PageSpec("views/train.py", "Train", ":material/model_training:"),
    "sweep": PageSpec("views/sweep.py", "Sweep", ":material/tune:"),
    "results": PageSpec("views/results.py", "Results", ":material/monitoring:"),
    "compare": PageSpec("views/compare.py", "Compare", ":material/compare_arrows:"),
    "playground": PageSpec("views/playground.py", "Playground", ":material/draw:"),
}


def navigation() -> list[st.Page]:
    return [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES.values()]


def page_link(name: str) -> None:
    page = PAGES[name]
    st.page_link(page.path, label=f"Go to {page.title}", icon=page.icon)


@st.cache_resource
def configure_process() -> None:
    """Once per server process. Training runs in processes of its own, so this one only ever predicts
    one digit at a time; Streamlit runs each rerun in a fresh thread, and a fresh thread's first
    multi-threaded torch op starts a new OpenMP team: about 40 ms, every time. One thread is also the
    fastest for one digit."""
    set_threads(1)


@st.cache_resource
def _store(home: str) -> Store:
    return Store(home)


@st.cache_resource
def _jobs(home: str) -> JobManager:
    return JobManager(_store(home))


@st.cache_resource
def _sweeps(home: str) -> JobManager:
    return JobManager(_store(home))


def store() -> Store:
    """The run store under NNAPP_HOME (./runs by default), one per process."""
    return _store(str(default_home().resolve()))


def jobs() -> JobManager:
    """The process-wide job manager: every browser tab shares it."""
    return _jobs(str(default_home().resolve()))


def sweeps() -> JobManager:
    """The job manager of sweep drivers, one at a time, each a process of its own that runs its trials in
    processes of their own: a sweep never holds up the Train page's queue, and reruns never touch it."""
    return _sweeps(str(default_home().resolve()))


@st.cache_data(show_spinner="Loading the data set…", max_entries=3)
def test_images(dataset: str):
    """Test images (uint8 N×28×28) and labels as numpy arrays, for galleries."""
    images = load(dataset)
    return images.test_x.numpy(), images.test_y.numpy()


def runs_or_hint(hint: str) -> list[Run]:
    """Every stored run, newest first; with none, the hint and a link to the Train page."""
    runs = store().runs()
    if not runs:
        st.info(hint)
        page_link("train")
    return runs


def class_names(dataset: str) -> list[str]:
    return list(DATASETS[dataset].classes) if dataset in DATASETS else [str(i) for i in range(10)]


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
    chosen = st.selectbox(label, keys, index=index, format_func=lambda k: by_key[k].label(), key=key)
    return by_key[chosen]


def open_results(key: str) -> None:
    st.session_state["results_run"] = key
    st.switch_page(PAGES["results"].path)


def open_playground(key: str) -> None:
    st.session_state["playground_run"] = key
    st.switch_page(PAGES["playground"].path)


def open_train(watch: str | None = None) -> None:
    if watch:
        st.session_state["watch_run"] = watch
    st.switch_page(PAGES["train"].path)
