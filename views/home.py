"""Home: what nnapp is, the device, run counts, the latest runs."""

import streamlit as st

import ui
from nnapp.engine.device import device_label
from nnapp.engine.presets import DEFAULT_PRESET, PRESETS
from nnapp.engine.states import ICONS, Status
from panels.queue import queue_ui


def main() -> None:
    st.title("nnapp")
    st.markdown(
        "Build a neural network, train it on your own hardware while its loss and accuracy are drawn live, "
        "then test it by drawing a digit. Every run is stored: launch the same configuration again and its results show at once."
    )
    store = ui.store()
    st.caption(f"Device: **{device_label()}** · runs stored in `{store.home}`")

    counts = store.counts()
    shown = [s for s in Status if s != Status.UNREADABLE or counts.get(s)]  # 'unreadable' only when there is one
    cols = st.columns(len(shown))
    for col, status in zip(cols, shown, strict=True):
        col.metric(f"{ICONS[status]} {status}", counts.get(status, 0))

    runs = store.runs()
    if not runs:
        st.info(
            "No runs yet. Train the default model (a small CNN: about 99.4% on MNIST after under a minute of training on a 2-core CPU) with one click:"
        )
    if st.button("Train the default model", type="primary" if not runs else "secondary", key="train_default"):
        submission = ui.jobs().submit(PRESETS[DEFAULT_PRESET], owner=ui.who())
        ui.open_train(watch=submission.key)

    queue_ui("home")
    if runs:
        st.subheader("Latest runs")
        if st.toggle("Only mine", key="home_mine", help=f"Runs launched first by {ui.who()}"):
            runs = [r for r in runs if r.owner == ui.who()]
        for run in runs[:8]:
            left, mid, right = st.columns([6, 2, 1])
            left.markdown(ui.escaped(run.label()))  # an unreadable row's reason quotes what the store holds
            mid.caption(ui.ago(run.created))
            if right.button("Open", key=f"open_{run.key}"):
                ui.open_results(run.key)


main()
