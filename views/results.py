"""Results: one run's curves, confusion matrix, per-class metrics, misclassified digits, export and import."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

import ui
from nnapp.bundle import export
from nnapp.bundle.importer import import_bundle
from nnapp.charts import runs as charts
from nnapp.engine.names import sig3
from nnapp.engine.states import Status
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
        # Each upload is checked and stored once, not on every rerun; the same file uploaded again (after the
        # run was deleted, say) is a new upload, with a file id of its own, and is imported again.
        done = st.session_state.setdefault("imported", {})
        if upload.file_id not in done:
            try:
                run = import_bundle(store, upload.getvalue(), limit=UPLOAD_UNPACKED)
                done[upload.file_id] = ("ok", f"Imported run {run.key}: {run.config.describe()}.")
                st.session_state["results_run"] = run.key
            except (BundleError, StoreError) as err:
                done[upload.file_id] = ("error", f"Not imported: {err}")
        kind, message = done[upload.file_id]
        (st.success if kind == "ok" else st.error)(ui.escaped(message))


def origin_ui(store: Store, run) -> dict | None:
    """Where an imported run came from, what its bundle did not carry, and what import found; None for a run trained here."""
    origin = store.imported(run.key)
    if origin is None:
        return None
    missing = origin.get("missing") or []
    text = f"Imported from a bundle (format {origin.get('version', '?')}) {ui.ago(origin.get('imported'))}."
    if missing:
        text += f" The bundle did not carry its {', '.join(missing)}."
    st.caption(ui.escaped(text))
    for note in origin.get("notes") or []:
        st.warning(ui.escaped(f"On import: {note}."))
    return origin


def unreadable_ui(store: Store, run) -> None:
    st.error(f"Run {ui.escaped(run.key)} cannot be read: {ui.escaped(run.message)}. The other runs are not affected.")
    if st.button("Delete this run…", key="delete_unreadable", icon=":material/delete:"):
        confirm_delete_unreadable(run.key)


@st.dialog("Delete this run for good?")
def confirm_delete_unreadable(key: str) -> None:
    st.markdown(f"Run {ui.escaped(key)} cannot be read; this removes what is left of it (its row, metrics and any weights).")
    left, right = st.columns(2)
    if left.button("Delete", type="primary", key="delete_unreadable_confirm", icon=":material/delete:", width="stretch"):
        ui.store().delete(key)
        left = ui.store().runs()
        # asked for by key (ui.pick_linked_run): a picker merely reset kept showing the deleted run in the browser
        st.session_state["results_run"] = next((r.key for r in left if r.has_weights()), left[0].key if left else None)
        st.query_params.pop("run", None)
        st.session_state["results_flash"] = f"Deleted the unreadable run {key}."
        st.rerun()
    if right.button("Keep it", key="delete_unreadable_cancel", width="stretch"):
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
        st.error(f"Weights unavailable: {ui.escaped(err)}")
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
        alt=[f"test image {i}: a {names[labels[i]]} read as {names[pred[i]]}" for i in shown],
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
        f'On the Playground a drawing scoring above the threshold is answered "This doesn\'t look like a digit". The threshold flags '
        f"{rates['validation']:.1%} of this run's validation digits; the held-out set ({rates['heldout_count']:,} "
        "hand-drawn letters and symbols, and letters of other fonts) is never trained on."
    )


def pick_cell(event, names: list[str]) -> None:
    """A click on a confusion-matrix cell filters the gallery to that (true, predicted) pair. Read from the
    chart's state before the gallery's pickers are drawn."""
    points = [p for p in ui.selected_points(event) if p.get("customdata") is not None]
    if not points:
        return
    cell = tuple(int(v) for v in np.ravel(points[0]["customdata"])[:2])
    if len(cell) != 2 or cell == st.session_state.get("confusion_cell") or not all(0 <= v < len(names) for v in cell):
        return
    st.session_state["confusion_cell"] = cell
    st.session_state["gallery_true"], st.session_state["gallery_pred"] = cell


def confusion_ui(run, names: list[str]) -> None:
    """The confusion matrix; a click on a cell shows those digits in the gallery below."""
    st.subheader("Confusion matrix")
    normalize = (
        st.radio(
            "Show", ["counts", "row-normalised"], key="cm_mode", horizontal=True,
            help="counts: how many test images; row-normalised: the share of each true class.",
        )
        == "row-normalised"
    )  # fmt: skip
    pick_cell(st.session_state.get("confusion"), names)
    matrix = np.array(run.test["confusion"])
    picked = st.session_state.get("confusion_cell")
    wanted = (st.session_state.get("gallery_true"), st.session_state.get("gallery_pred"))
    picked = picked if picked is not None and wanted == tuple(picked) else None  # the pickers changed since
    off = matrix - np.diag(np.diag(matrix))
    true, pred = np.unravel_index(int(off.argmax()), off.shape)
    worst = (
        ui.escaped(f"the most common mistake: a {names[true]} read as {names[pred]} ({off[true, pred]} times)")
        if off[true, pred]
        else "no mistakes"
    )
    st.plotly_chart(
        charts.confusion(run.test["confusion"], names, normalize, picked),
        key="confusion",
        on_select="rerun",
        selection_mode="points",
        alt=f"Confusion matrix of the {matrix.sum():,} test images: true class in rows, predicted in columns; {worst}.",
        config=ui.QUIET,
    )
    st.caption(f"Rows: the true class; columns: what the model answered. Click a cell to show those images below. Here {worst}.")


def labels_ui(store: Store, run) -> None:
    """The run's name, notes and tags, editable; its key stays its identity."""
    labels = store.labels(run.key)
    with st.expander("Name, notes and tags"):
        with st.form(f"labels_{run.key}", border=False):
            name = st.text_input("Name", labels.name or ui.run_name(run, {}), key=f"run_name_{run.key}", max_chars=120)
            notes = st.text_area("Notes", labels.notes, key=f"run_notes_{run.key}", height=90, max_chars=4000)
            tags = st.text_input("Tags (comma-separated)", ", ".join(labels.tags), key=f"run_tags_{run.key}")
            saved = st.form_submit_button("Save name, notes and tags")
        if saved:
            try:
                new = store.set_labels(run.key, name=name if name.strip() != ui.run_name(run, {}) else "", notes=notes, tags=tags)
            except ValueError as err:  # a control character in the name
                st.error(ui.escaped(f"Not saved: {err}."))
                return
            st.session_state["results_flash"] = f"Saved: this run is now called “{new.name or ui.run_name(run, {})}”."
            st.rerun()  # the page says it was saved (main)


def summary_ui(store: Store, run) -> dict | None:
    """The run's name, who launched it, its figures, how it ended, where it came from, and its details (key,
    config); returns its import's record, if it was imported."""
    labels = store.all_labels()
    st.subheader(ui.escaped(ui.run_name(run, labels)))
    tags = labels.get(run.key).tags if run.key in labels else ()
    st.caption(
        ui.escaped(f"Launched by {run.owner or 'nobody named (imported or older)'}")
        + (" · Tags: " + ", ".join(ui.escaped(t) for t in tags) if tags else "")
    )
    c = st.columns(4)
    c[0].metric("Status", f"{run.icon} {run.status}")
    c[1].metric("Test accuracy", f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-")
    c[2].metric("Training", f"{sig3(run.train_seconds)} s" if run.train_seconds else "-")
    c[3].metric("Finished", ui.ago(run.finished))
    if run.status in Status.neutral():
        st.info(ui.escaped(ui.stopped_text(store, run)), icon=":material/pause_circle:")
    elif run.message:
        (st.error if run.is_problem() else st.info)(ui.escaped(run.message))
    origin = origin_ui(store, run)
    if run.parent:
        how = "Fine-tuned" if run.config.personal else "Continued"
        st.caption(
            f"{how} from run `{run.parent[:8]}`" + (": its curves are drawn before this run's." if how == "Continued" else ".")
        )
    labels_ui(store, run)
    with st.expander("Details: key and config"):
        st.markdown(f"Key `{run.key}` · trained on {ui.escaped(run.device or '-')} in {run.precision or '-'}")
        st.code(json.dumps(run.config.to_dict(), indent=2, sort_keys=True), language="json")
    return origin


def curves_ui(store: Store, run, origin: dict | None) -> None:
    steps, epochs, joins = joined(store, run, max_rows=CHART_STEPS)  # a continued run's parent's curves first
    if not steps and not (origin and epochs):  # an older bundle's run: its epochs, without the per-step curves
        return
    config = run.config
    series = charts.curve_series(steps, epochs, config.steps_per_epoch(), config.label_smoothing)
    last = next((e for e in reversed(epochs) if e.get("val_acc") is not None), None)
    numbers = (
        f"validation accuracy {last['val_acc']:.2%}, loss {sig3(last['val_loss'])} after epoch {last['epoch']}"
        if last
        else "no epoch ended"
    )
    st.plotly_chart(
        charts.curves(steps, epochs, config.steps_per_epoch(), config.label_smoothing, [x for x, _ in joins]),
        key="results_curves",
        alt=f"Loss and accuracy over {len(steps)} training steps; {numbers}.",
        config=ui.QUIET,
    )
    loss, acc = series["definitions"]
    st.caption(
        f"Train per step (faint) and smoothed (solid), validation after each epoch (orange): {numbers}. Train accuracy "
        f"is {acc}" + (f"; the loss drawn is {loss}." if loss else ".")
    )


def main() -> None:
    st.title("Results", anchor=False)
    store = ui.store()
    import_ui(store)
    if flash := st.session_state.pop("results_flash", None):  # first: deleting the last run says so too
        st.success(ui.escaped(flash), icon=":material/check:")
    runs = ui.runs_or_hint("No runs yet: train one on the Train page, or import one above.")
    if not runs:
        return
    done = [r for r in runs if r.has_weights()]
    run = ui.pick_linked_run(runs, "results_pick", "results_run", fallback=(done or runs)[0].key)
    if run.is_unreadable():
        unreadable_ui(store, run)
        return
    origin = summary_ui(store, run)
    curves_ui(store, run, origin)
    if run.test:
        names = ui.class_names(run.config.dataset)
        left, right = st.columns([3, 2])
        with left:
            confusion_ui(run, names)
        with right:
            per_class_ui(run, names)
        gallery(run, store)
        not_digit_rates(run)
    if not run.is_active():
        inside_ui(run)
    st.subheader("Export")
    downloads(store, run)


def per_class_ui(run, names: list[str]) -> None:
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
        table.style.format({"precision": "{:.3f}", "recall": "{:.3f}", "F1": "{:.3f}"}), hide_index=True, width="stretch"
    )
    st.caption(
        "Precision: of the images read as this class, the share that were. Recall: of this class's images, the share found."
    )
    if run.has_weights() and st.button("Try this model in the Playground", key="to_playground", type="primary", width="stretch"):
        ui.open_playground(run.key)
    left, right = st.columns(2)
    if left.button(
        "Train a variant", key="to_train", help="open the Train page with this run's settings in the form", width="stretch"
    ):
        ui.open_train(watch=run.key)
    if run.has_weights() and right.button(
        "Continue training it", key="to_continue", icon=":material/fast_forward:", width="stretch"
    ):
        st.session_state["continue_run"] = run.key
        ui.open_train()


main()
