"""Compare: all runs in a table, overlaid curves, hyperparameters against accuracy; delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from nnapp.charts import runs as charts
from nnapp.engine import datasets
from nnapp.engine.states import Status
from nnapp.store.comparable import on_validation_definition

HYPER = ["model", "lr", "batch_size", "epochs", "optimizer", "activation", "dropout"]
COLUMNS = [
    "key", "status", "test accuracy", "train s", "dataset", "model", "conv", "hidden", "optimizer", "lr", "schedule",
    "batch_size", "epochs", "activation", "dropout", "augment", "created",
]  # fmt: skip
CURVES = {
    "val_acc": "validation accuracy",
    "val_loss": "validation loss",
    "train_loss": "train loss (no label smoothing, as validation)",
    "train_acc": "train accuracy (training mode)",
}


def table(runs) -> pd.DataFrame:
    return pd.DataFrame([row(r) if r.config else {"key": r.key, "status": r.status} for r in runs], columns=COLUMNS)


def row(r) -> dict:
    """A run's line in the table; an unreadable run keeps whatever of its config could be read."""
    return {
        "key": r.key,
        "status": r.status,
        "test accuracy": r.accuracy,
        "train s": r.train_seconds,
        "dataset": datasets.base_name(r.config.dataset),
        "model": r.config.model,
        "conv": "-".join(str(c[0]) for c in r.config.conv) if r.config.model == "cnn" else "",
        "hidden": "-".join(map(str, r.config.hidden)),
        "optimizer": r.config.optimizer,
        "lr": r.config.lr,
        "schedule": r.config.schedule,
        "batch_size": r.config.batch_size,
        "epochs": r.config.epochs,
        "activation": r.config.activation,
        "dropout": r.config.dropout,
        "augment": r.config.augment,
        "created": pd.to_datetime(r.created, unit="s", errors="coerce"),
    }


def delete_ui(store, picked: list) -> None:
    with st.expander(f"Delete {len(picked)} selected run{'s' * (len(picked) > 1)}"):
        st.warning("This removes the runs, their metrics and their weights for good.")
        confirm = st.checkbox("Yes, delete them", key="confirm_delete")
        if st.button("Delete", disabled=not confirm, key="delete"):
            busy = [run for run in picked if run.is_active()]
            for run in picked:
                if not run.is_active():
                    store.delete(run.key)
            if busy:
                st.session_state["compare_flash"] = f"{len(busy)} run(s) still training were kept: cancel them first."
            del st.session_state["runs_table"]  # the rows it selected are gone
            st.rerun()


def main() -> None:
    st.title("Compare")
    store = ui.store()
    runs = ui.runs_or_hint("No runs yet: train some on the Train page, then compare them here.")
    if not runs:
        return
    df = table(runs)
    by_key = {r.key: r for r in runs}
    f1, f2, f3 = st.columns(3)
    statuses = f1.multiselect("Status", [s for s in Status if s in set(df.status)], key="filter_status")
    datasets = f2.multiselect("Data set", sorted(set(df.dataset.dropna())), key="filter_dataset")
    kinds = f3.multiselect("Model kind", sorted(set(df.model.dropna())), key="filter_model")
    mask = pd.Series(True, index=df.index)
    for column, chosen in (("status", statuses), ("dataset", datasets), ("model", kinds)):
        if chosen:
            mask &= df[column].isin(chosen)
    shown = df[mask]
    st.caption(f"{len(shown)} of {len(df)} runs. Click the column headers to sort; tick rows to compare or delete them.")
    event = st.dataframe(
        shown.style.format({"test accuracy": "{:.2%}", "train s": "{:.1f}", "lr": "{:.1e}", "dropout": "{:.2f}"}, na_rep="-"),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key="runs_table",
    )
    rows = event.selection.rows if event else []
    picked = [shown.iloc[r]["key"] for r in rows if r < len(shown)]  # a selection can outlive a filter change
    if flash := st.session_state.pop("compare_flash", None):
        st.warning(flash)
    if picked:
        metric = st.radio("Curve", list(CURVES), format_func=CURVES.get, key="overlay_metric", horizontal=True)
        series, left_out = {}, []
        for run in (by_key[k] for k in picked):
            epochs = store.epochs(run.key)
            if metric == "train_loss":  # on validation's definition; a run that cannot give it is named, not drawn
                epochs = on_validation_definition(epochs, run.config.label_smoothing)
            if epochs is None:
                left_out.append(run.label())
            else:
                series[run.label()] = epochs
        if left_out:
            st.caption(
                "Not drawn: trained with label smoothing before nnapp recorded the loss without it: " + "; ".join(left_out)
            )
        st.plotly_chart(charts.overlay(series, metric), key="overlay")
        delete_ui(store, [by_key[k] for k in picked])
    else:
        st.info("Tick one or more rows to overlay their validation curves.")

    finished = df[[by_key[k].has_weights() for k in df.key]]
    if len(finished) >= 2:
        st.subheader("Hyperparameters against test accuracy")
        rows = finished.to_dict("records")
        st.plotly_chart(charts.hyperparameters(rows, HYPER), key="parcoords")


main()
