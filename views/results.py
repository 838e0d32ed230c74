"""Results: one run's curves, confusion matrix, per-class metrics, misclassified digits, export and import."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import streamlit as st

import ui
from nnapp.bundle import export
from nnapp.bundle.importer import import_bundle
from nnapp.charts import runs as charts
from nnapp.store.lineage import joined
from nnapp.store.store import Store
from nnapp.system.errors import BundleError, DataError, StoreError
from panels.inside import inside_ui
from ui import CHART_STEPS

GALLERY_MAX = 60
UPLOAD_UNPACKED = 256 << 20  # what an uploaded bundle may unpack to; larger runs: python -m nnapp import


@st.cache_data(show_spinner=False, max_entries=4)
def bundle(home: str, key: str, sha: str) -> bytes:
    """The run's zip bundle, made when the download button is clicked (torch.export takes a few seconds)."""
    return export.bundle_bytes(Store(home), key)


def import_ui(store: Store) -> None:
    """Upload a bundle that `export` wrote: checked in full, then opened here."""
    with st.expander("Import a run (a bundle exported from nnapp)"):
        upload = st.file_uploader("Run bundle (.zip)", type=["zip"], key="import_bundle")
        if upload is None:
            return
        blob = upload.getvalue()
        digest = hashlib.sha256(blob).hexdigest()
        done = st.session_state.setdefault("imported", {})
        if digest not in done:  # each upload is checked and stored once, not on every rerun
            try:
                run = import_bundle(store, blob, limit=UPLOAD_UNPACKED)
                done[digest] = ("ok", f"Imported run {run.key}: {run.config.describe()}.")
                st.session_state["results_run"] = run.key
            except (BundleError, StoreError) as err:
                done[digest] = ("error", f"Not imported: {err}")
        kind, message = done[digest]
        (st.success if kind == "ok" else st.error)(message)


def unreadable_ui(store: Store, run) -> None:
    st.error(f"Run `{run.key}` cannot be read: {run.message}. The other runs are not affected.")
    if st.button("Delete this run", key="delete_unreadable"):
        store.delete(run.key)
        st.session_state.pop("results_pick", None)
        st.query_params.pop("run", None)
        st.rerun()


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
    except StoreError as err:
        st.error(f"Weights unavailable: {err}")
        return
    cols[2].download_button("Weights (safetensors)", weights, f"{run.key}.safetensors", key="dl_weights")
    home, sha = str(store.home), run.weights_sha256
    cols[3].download_button(
        "Bundle (zip)",
        lambda: bundle(home, run.key, sha),
        export.bundle_name(run.key),
        "application/zip",
        key="dl_bundle",
        help="config, weights, metrics, a torch.export program and predict.py; import it into another nnapp",
    )


def gallery(run, store: Store) -> None:
    stored = store.predictions(run.key)
    if stored is None:
        st.info("This run has no stored predictions.")
        return
    pred, prob = stored
    try:
        images, labels = ui.test_images(run.config)
    except DataError as err:  # a run imported without its data set's images, say
        st.info(f"The test images cannot be shown: {err}")
        return
    names = ui.class_names(run.config.dataset)
    if len(pred) != len(labels) or pred.max(initial=0) >= len(names):
        st.info("This run's stored predictions do not match the test set.")
        return
    wrong = np.flatnonzero(pred != labels)
    st.subheader(f"Misclassified test images ({len(wrong)} of {len(labels):,})")
    c1, c2, c3 = st.columns(3)
    classes = ["any", *range(len(names))]
    true_pick = c1.selectbox("True class", classes, key="gallery_true", format_func=lambda v: v if v == "any" else names[v])
    pred_pick = c2.selectbox("Predicted class", classes, key="gallery_pred", format_func=lambda v: v if v == "any" else names[v])
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
        caption=[f"#{i}: {ui.escaped(names[labels[i]])} → {ui.escaped(names[pred[i]])} ({prob[i]:.0%})" for i in shown],
        width=84,
    )
    if len(wrong) > GALLERY_MAX:
        st.caption(f"Showing {GALLERY_MAX} of {len(wrong)}.")


def not_digit_rates(run) -> None:
    """How often the run's not-a-digit check flags MNIST test digits and held-out drawings that are not digits."""
    check = ui.not_digit_check(run)
    if check is None:
        return
    st.subheader("Not a digit")
    if isinstance(check, str):
        st.info(check)
        return
    rates = check["rates"]
    cols = st.columns(3)
    cols[0].metric("MNIST test digits flagged", f"{rates['test']:.2%}")
    cols[1].metric("Held-out non-digits flagged", f"{rates['heldout']:.1%}")
    cols[2].metric("Threshold", f"{check['threshold']:.2f}")
    st.caption(
        f'On the Playground a drawing scoring above the threshold is answered "not a digit?". The threshold flags '
        f"{rates['validation']:.1%} of this run's validation digits; the held-out set ({rates['heldout_count']:,} "
        "hand-drawn letters and symbols, and letters of other fonts) is never trained on."
    )


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
    import_ui(store)
    runs = ui.runs_or_hint("No runs yet: train one on the Train page, or import one above.")
    if not runs:
        return
    done = [r for r in runs if r.has_weights()]
    run = ui.pick_linked_run(runs, "results_pick", "results_run", fallback=(done or runs)[0].key)
    if run.is_unreadable():
        unreadable_ui(store, run)
        return

    c = st.columns(4)
    c[0].metric("Status", f"{run.icon} {run.status}")
    c[1].metric("Test accuracy", f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-")
    c[2].metric("Training", f"{run.train_seconds:.1f}s" if run.train_seconds else "-")
    c[3].metric("Finished", ui.ago(run.finished))
    st.caption(f"{run.config.describe()} · trained on {run.device or '-'} in {run.precision or '-'} · key `{run.key}`")
    if run.message:
        (st.error if run.is_problem() else st.info)(run.message)
    if run.parent:
        how = "Fine-tuned" if run.config.personal else "Continued"
        st.caption(
            f"{how} from run `{run.parent[:8]}`" + (": its curves are drawn before this run's." if how == "Continued" else ".")
        )
    with st.expander("Config"):
        st.code(json.dumps(run.config.to_dict(), indent=2, sort_keys=True), language="json")

    steps, epochs, joins = joined(store, run, max_rows=CHART_STEPS)
    if steps:
        figure = charts.curves(steps, epochs, run.config.steps_per_epoch(), run.config.label_smoothing, [x for x, _ in joins])
        st.plotly_chart(figure, key="results_curves")
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
            st.caption("Click a cell to show those images below.")
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
            if run.has_weights() and st.button("Continue training it", key="to_continue", icon=":material/fast_forward:"):
                st.session_state["continue_run"] = run.key
                ui.open_train()
        gallery(run, store)
        not_digit_rates(run)
    if not run.is_active():
        inside_ui(run)
    st.subheader("Export")
    downloads(store, run)


main()
