"""The embedding projector on the Results page: the test digits in the penultimate layer's space, in 2-D."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from nnapp.charts import inside as charts_inside
from nnapp.engine.states import TaskKind
from nnapp.inside import projector
from nnapp.inside.activations import penultimate
from nnapp.store.store import Store
from panels.activations import network
from panels.tasks import task_progress


@st.cache_data(max_entries=4, show_spinner="Running the test images through the network…")
def space(home: str, key: str, sha: str) -> dict[str, np.ndarray]:
    """The PCA of the test digits' penultimate features, with their labels and predictions."""
    features, labels, preds = projector.features(Store(home), key)
    return {**projector.pca(features), "labels": labels, "preds": preds}


@st.cache_data(max_entries=8, show_spinner=False)
def drawings_in(home: str, key: str, sha: str, images: np.ndarray) -> np.ndarray:
    """The user's drawings (uint8 N×28×28) in the run's PCA space."""
    import torch

    model, _ = network(home, key, sha)
    features, _ = penultimate(model, torch.from_numpy(images))
    return projector.project(features, space(home, key, sha))


def tsne_ui(run) -> np.ndarray | None:
    """The run's t-SNE map if it was computed; else the button, the progress or the error, and None."""
    key = projector.tsne_key(run)
    task = ui.store().tasks.get(key)
    if task is not None and task.is_done() and task.result:
        return np.asarray(task.result["coords"], np.float32)
    if task is not None and task.is_active():
        task_progress(key, "t-SNE", "tsne_cancel")
        return None
    if task is not None and task.is_problem():
        st.error(f"t-SNE {task.status}: {ui.escaped(task.message or 'no details')}")
    st.info(
        "t-SNE keeps neighbours together better than PCA, but takes a few minutes for 10,000 digits; it runs in the background and is kept for this run."
    )
    if st.button("Compute t-SNE", key="tsne_start", icon=":material/scatter_plot:"):
        ui.jobs().submit_task(TaskKind.TSNE, key, {"run": run.key}, force=task is not None, owner=ui.who())
        st.rerun()
    return None


def projector_ui(run) -> None:
    home, names = str(ui.store().home), ui.class_names(run.config.dataset)
    c1, c2 = st.columns([2, 3])
    method = c1.radio("Projection", ["PCA", "t-SNE"], key="proj_method", horizontal=True)
    images, labels, _ = ui.store().drawings() if run.config.dataset == "mnist" else (None, [], None)  # digits
    mine = c2.checkbox(f"Show my {len(labels)} saved drawings", key="proj_drawings", disabled=not len(labels))
    pca = space(home, run.key, run.weights_sha256)
    coords = pca["coords"][:, :2] if method == "PCA" else tsne_ui(run)
    if coords is None:
        return
    extra = None
    if mine and len(labels):
        placed = drawings_in(home, run.key, run.weights_sha256, images)
        at = placed[:, :2] if method == "PCA" else projector.place(placed, pca["coords"][: len(coords)], coords)
        extra = {"coords": at, "labels": labels}
    n = len(coords)
    fig = charts_inside.projection(coords, pca["labels"][:n], pca["preds"][:n], names, extra)
    alt = f"A map of {len(coords):,} test digits in two dimensions, coloured by true class, misclassified ones ringed."
    event = st.plotly_chart(fig, key="projection", on_select="rerun", selection_mode="points", alt=alt)
    explained = pca["explained"][:2].sum()
    st.caption(
        f"{n:,} test digits as the layer before the output sees them ({pca['basis'].shape[0]} features), coloured by "
        "true class; black rings mark the misclassified. "
        + (
            f"PCA: the two directions of greatest variance ({explained:.0%} of it)."
            if method == "PCA"
            else "t-SNE (scikit-learn, perplexity 30) of the features' 50 principal components. "
        )
        + (" Your drawings are placed at the mean of their 10 nearest test digits." if extra and method == "t-SNE" else "")
        + " Click a point to see its digit."
    )
    _picked_ui(event, run, pca, names)


def _picked_ui(event, run, pca: dict, names: list[str]) -> None:
    points = [p for p in ui.selected_points(event) if p.get("customdata") is not None]
    if not points:
        return
    index = int(np.ravel(points[0]["customdata"])[0])
    images, _ = ui.test_images(run.config)
    true, pred = int(pca["labels"][index]), int(pca["preds"][index])
    left, right = st.columns([1, 4])
    left.image(images[index], width=112, caption=f"test digit #{index}")
    verdict = "correct" if true == pred else "misclassified"
    right.markdown(f"**True class {ui.escaped(names[true])}, predicted {ui.escaped(names[pred])}** ({verdict})")
