"""A data set's examples as galleries, one per class, each example with a button that deletes it."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui

PER_ROW = 10
SHOWN = 60  # examples a class's gallery shows, newest first


def recent(images: np.ndarray, caption: str) -> None:
    """The newest examples of a class as one strip of thumbnails (one element: cheap to redraw)."""
    if len(images):
        st.caption(caption)
        st.image(list(ui.shown_images(images)), width=42)


def gallery_ui(name: str) -> None:
    """Per class, its newest examples; a click on ✕ under one deletes it (a new version of the data set)."""
    store = ui.store()
    data_set = store.data_set(name)
    if data_set is None or not data_set.total:
        return
    tabs = st.tabs([f"{ui.escaped(c)} ({n})" for c, n in zip(data_set.classes, data_set.counts, strict=True)])
    for label, tab in enumerate(tabs):
        with tab:
            ids, images, _ = store.examples(name, label=label, limit=SHOWN)
            if not ids:
                st.caption("No examples yet.")
                continue
            _grid(name, ids, ui.shown_images(images))
            if data_set.counts[label] > SHOWN:
                st.caption(f"The newest {SHOWN} of {data_set.counts[label]:,}.")


def _grid(name: str, ids: list[int], images: np.ndarray) -> None:
    for start in range(0, len(ids), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, example_id, image in zip(cols, ids[start : start + PER_ROW], images[start : start + PER_ROW], strict=False):
            col.image(image, width=56)
            if col.button("✕", key=f"delete_example_{example_id}", help=f"Delete example #{example_id}"):
                ui.store().delete_examples(name, [example_id])
                st.toast(f"Deleted example #{example_id}.")
                st.rerun()
