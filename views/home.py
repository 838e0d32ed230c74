"""Home: what nnapp is, a one-click first model, run counts, the latest runs and a search over them."""

import streamlit as st

import ui
from nnapp.engine.device import device_label
from nnapp.engine.presets import PRESETS
from nnapp.engine.states import ICONS, Status
from nnapp.system.errors import StoreError
from panels.queue import queue_ui

FIRST_PRESET = "fast"  # one epoch of a small CNN: a first result in seconds on a CPU
LATEST = 8


def first_model_ui(newcomer: bool) -> None:
    """One click trains the fast preset; the Train page then shows it learning and its result."""
    if newcomer:
        st.info(
            "New here? One click trains a small network on 60,000 handwritten digits, shows it learning, and tells you "
            "how many of 10,000 digits it has never seen it reads right (about 99%). Then draw your own digit for it.",
            icon=":material/waving_hand:",
        )
    label = "Train my first model" if newcomer else "Train the fast model"
    if st.button(label, type="primary" if newcomer else "secondary", key="train_first", icon=":material/play_arrow:"):
        try:
            submission = ui.jobs().submit(PRESETS[FIRST_PRESET], owner=ui.who())
        except (ValueError, StoreError) as err:  # a store that cannot be written, a machine too small
            st.error(f"It could not be launched: {err}")
            return
        ui.open_train(watch=submission.key)


def counts_ui(store) -> None:
    """Runs by status, only the statuses some run has."""
    counts = store.counts()
    shown = [s for s in Status if counts.get(s)]
    if not shown:
        return
    cols = st.columns(len(shown))
    for col, status in zip(cols, shown, strict=True):
        col.metric(f"{ICONS[status]} {status}", counts[status])


def latest_ui(store, runs) -> None:
    """The latest runs by name, or those a search finds (name, notes, tags, key, config)."""
    labels = store.all_labels()
    words = st.text_input("Search runs", key="home_search", placeholder="a name, a tag, a word of a note, a key…")
    if st.toggle("Only mine", key="home_mine", help=f"Runs launched first by {ui.who()}"):
        runs = [r for r in runs if r.owner == ui.who()]
    found = ui.search_runs(runs, words, labels)
    st.subheader("Latest runs" if not words.strip() else f"{len(found)} run{'s' * (len(found) != 1)} found")
    for run in found[:LATEST]:
        left, mid, right = st.columns([6, 2, 1], vertical_alignment="center")
        left.markdown(ui.escaped(ui.run_title(run, labels)))
        mid.caption(ui.ago(run.created))
        if right.button("Open", key=f"open_{run.key}", help=f"open run {run.key[:8]} in Results"):
            ui.open_results(run.key)
    if len(found) > LATEST:
        st.caption(f"{len(found) - LATEST} more on the Compare page.")


def main() -> None:
    st.title("nnapp", anchor=False)
    st.markdown(
        "Build a neural network, train it on your own computer while its loss and accuracy are drawn live, "
        "then test it by drawing a digit. Every run is kept: launch the same settings again and its results show at once."
    )
    store = ui.store()
    st.caption(f"Device: **{device_label()}** · runs stored in `{store.home}`")
    runs = store.runs()
    if not runs:
        ui.jobs().warm()  # a newcomer's first click trains at once
    first_model_ui(newcomer=not runs)
    queue_ui("home")
    if runs:
        counts_ui(store)
        latest_ui(store, runs)


main()
