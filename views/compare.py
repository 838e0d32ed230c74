"""Compare: all runs in a table, overlaid curves, hyperparameters against accuracy; delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from nnapp import charts
from nnapp.store import ACTIVE, STATUSES

HYPER = ["model", "lr", "batch_size", "epochs", "optimizer", "activation", "dropout"]


def table(runs) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "key": r.key,
                "status": r.status,
                "test accuracy": r.accuracy,
                "train s": r.train_seconds,
                "dataset": r.config.dataset,
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
                "created": pd.Timestamp(r.created, unit="s"),
            }
            for r in runs
        ]
    )


def main() -> None:
    st.title("Compare")
    store = ui.store()
    runs = store.runs()
    if not runs:
        st.info("No runs yet: train some on the Train page, then compare them here.")
        return
    df = table(runs)
    f1, f2, f3 = st.columns(3)
    statuses = f1.multiselect("Status", [s for s in STATUSES if s in set(df.status)], key="filter_status")
    datasets = f2.multiselect("Data set", sorted(set(df.dataset)), key="filter_dataset")
    kinds = f3.multiselect("Model kind", sorted(set(df.model)), key="filter_model")
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
    picked = shown.iloc[event.selection.rows]["key"].tolist() if event and event.selection.rows else []
    if not picked and "compare_pick" in st.session_state:  # set by tests and by links
        picked = [k for k in st.session_state["compare_pick"] if k in set(shown.key)]

    if picked:
        by_key = {r.key: r for r in runs}
        metric = st.radio("Curve", ["val_acc", "val_loss", "train_loss", "train_acc"], key="overlay_metric", horizontal=True)
        series = {ui.run_label(by_key[k]): store.epochs(k) for k in picked}
        st.plotly_chart(charts.overlay(series, metric), key="overlay")
        with st.expander(f"Delete {len(picked)} selected run{'s' * (len(picked) > 1)}"):
            st.warning("This removes the runs, their metrics and their weights for good.")
            confirm = st.checkbox("Yes, delete them", key="confirm_delete")
            if st.button("Delete", disabled=not confirm, key="delete"):
                busy = [k for k in picked if by_key[k].status in ACTIVE]
                for k in picked:
                    if k not in busy:
                        store.delete(k)
                if busy:
                    st.error(f"{len(busy)} run(s) still training were kept: cancel them first.")
                st.session_state.pop("compare_pick", None)
                st.rerun()
    else:
        st.info("Tick one or more rows to overlay their validation curves.")

    finished = df[df.status == "done"]
    if len(finished) >= 2:
        st.subheader("Hyperparameters against test accuracy")
        rows = finished.to_dict("records")
        st.plotly_chart(charts.hyperparameters(rows, HYPER), key="parcoords")


main()
