"""Results: one run's curves, confusion matrix, per-class metrics, misclassified digits and exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

import ui
from nnapp import charts, export
from nnapp.errors import StoreError
from nnapp.store import Store
from panels.inside import inside_ui
from ui import CHART_STEPS

GALLERY_MAX = 60


@st.cache_data(show_spinner="Tracing the model…", max_entries=8)
def torchscript(home: str, key: str, sha: str) -> bytes:
    return export.torchscript_bytes(Store(home), key)


def downloads(store: Store, run) -> None:
    cols = st.columns(4)
    cols[0].download_button(
        "Config (JSON)", export.config_json(store, run.key), f"{run.key}.json", "application/json", key="dl_config"
    )
    cols[1].download_button(
        "Metrics (CSV)", export.metrics_csv(store, run.key), f"{run.key}-metrics.csv", "text/csv", key="dl_metrics"
    )
    if not run.has_weights():
        return
    try:
        weights = export.weights_bytes(store, run.key)
        script = torchscript(str(store.home), run.key, run.weights_sha256)
    except StoreError as err:
        st.error(f"Weights unavailable: {err}")
        return
    cols[2].download_button("Weights (safetensors)", weights, f"{run.key}.safetensors", key="dl_weights")
    cols[3].download_button("TorchScript", script, f"{run.key}.torchscript.pt", key="dl_torchscript")


def gallery(run, store: Store) -> None:
    stored = store.predictions(run.key)
    if stored is None:
        st.info("This run has no stored predictions.")
        return
    pred, prob = stored
    images, labels = ui.test_images(run.config.dataset)
    names = ui.class_names(run.config.dataset)
    wrong = np.flatnonzero(pred != labels)
    st.subheader(f"Misclassified test images ({len(wrong)} of {len(labels):,})")
    c1, c2, c3 = st.columns(3)
    true_pick = c1.selectbox(
        "True class", ["any", *range(10)], key="gallery_true", format_func=lambda v: v if v == "any" else names[v]
    )
    pred_pick = c2.selectbox(
        "Predicted class", ["any", *range(10)], key="gallery_pred", format_func=lambda v: v if v == "any" else names[v]
    )
    order = c3.radio("Order", ["most confident first", "test-set order"], key="gallery_order", horizontal=True)
    if true_pick != "any":
        wrong = wrong[labels[wrong] == true_pick]
    if pred_pick != "any":
        wrong = wrong[pred[wrong] == pred_pick]
    if order == "most confident first":
        wrong = wrong[np.argsort(-prob[wrong], kind="stable")]
    if not len(wrong):
        st.info("No misclassified images for that choice.")
        return
    shown = wrong[:GALLERY_MAX]
    st.image(
        [images[i] for i in shown],
        caption=[f"#{i}: {names[labels[i]]} → {names[pred[i]]} ({prob[i]:.0%})" for i in shown],
        width=84,
    )
    if len(wrong) > GALLERY_MAX:
        st.caption(f"Showing {GALLERY_MAX} of {len(wrong)}.")


def pick_cell(event, names: list[str]) -> None:
    """A click on a confusion-matrix cell filters the gallery to that (true, predicted) pair."""
    points = (
        (event or {}).get("selection", {}).get("points", [])
        if isinstance(event, dict)
        else getattr(getattr(event, "selection", None), "points", [])
    )
    if not points:
        return
    cell = (str(points[0].get("y")), str(points[0].get("x")))
    if cell == st.session_state.get("confusion_cell") or cell[0] not in names or cell[1] not in names:
        return
    st.session_state["confusion_cell"] = cell
    st.session_state["gallery_true"] = names.index(cell[0])
    st.session_state["gallery_pred"] = names.index(cell[1])


def main() -> None:
    st.title("Results")
    store = ui.store()
    runs = ui.runs_or_hint("No runs yet: train one on the Train page.")
    if not runs:
        return
    default = st.session_state.pop("results_run", None) or st.query_params.get("run")
    if default is None:
        done = [r for r in runs if r.has_weights()]
        default = done[0].key if done else runs[0].key
    if default in {r.key for r in runs}:
        st.session_state["results_pick"] = default
    run = ui.pick_run(runs, "results_pick", default=default)
    st.query_params["run"] = run.key

    c = st.columns(4)
    c[0].metric("Status", f"{run.icon} {run.status}")
    c[1].metric("Test accuracy", f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-")
    c[2].metric("Training", f"{run.train_seconds:.1f}s" if run.train_seconds else "-")
    c[3].metric("Finished", ui.ago(run.finished))
    st.caption(f"{run.config.describe()} · trained on {run.device or '-'} in {run.precision or '-'} · key `{run.key}`")
    if run.message:
        (st.error if run.is_problem() else st.info)(run.message)
    if run.parent:
        st.caption(f"Fine-tuned from run `{run.parent[:8]}`.")
    with st.expander("Config"):
        st.code(json.dumps(run.config.to_dict(), indent=2, sort_keys=True), language="json")

    steps, epochs = store.steps(run.key, max_rows=CHART_STEPS), store.epochs(run.key)
    if steps:
        st.plotly_chart(
            charts.curves(steps, epochs, run.config.steps_per_epoch(), run.config.label_smoothing), key="results_curves"
        )
    if run.test:
        names = ui.class_names(run.config.dataset)
        left, right = st.columns([3, 2])
        with left:
            st.subheader("Confusion matrix")
            normalize = st.radio("Show", ["counts", "row-normalised"], key="cm_mode", horizontal=True) == "row-normalised"
            event = st.plotly_chart(
                charts.confusion(run.test["confusion"], names, normalize),
                key="confusion",
                on_select="rerun",
                selection_mode="points",
            )
            pick_cell(event, names)
            st.caption("Click a cell to show those digits below.")
        with right:
            st.subheader("Per class")
            table = pd.DataFrame(
                {
                    "class": names,
                    "precision": run.test["precision"],
                    "recall": run.test["recall"],
                    "F1": run.test["f1"],
                    "support": [sum(row) for row in run.test["confusion"]],
                }
            )
            st.dataframe(
                table.style.format({"precision": "{:.4f}", "recall": "{:.4f}", "F1": "{:.4f}"}), hide_index=True, width="stretch"
            )
            if run.has_weights() and st.button("Try this model in the Playground", key="to_playground"):
                ui.open_playground(run.key)
        gallery(run, store)
    if not run.is_active():
        inside_ui(run)
    st.subheader("Export")
    downloads(store, run)


main()
