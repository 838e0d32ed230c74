"""Compare: all runs in a table (by name, the columns that differ first), a search over names, notes and tags,
overlaid curves per step, hyperparameters against accuracy; delete."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

import ui
from nnapp.charts import runs as charts
from nnapp.engine import datasets
from nnapp.engine.names import differing, sig3
from nnapp.engine.states import Status
from ui import CHART_STEPS

HYPER = ["model", "lr", "batch_size", "epochs", "optimizer", "activation", "dropout"]
FIRST = ["name", "launched by", "status", "test accuracy"]
CONFIG = [
    "dataset", "model", "conv", "hidden", "optimizer", "lr", "schedule", "batch_size", "epochs", "activation", "dropout",
    "batch_norm", "label_smoothing", "augment", "train_subset", "seed",
]  # fmt: skip
LAST = ["train s", "tags", "key", "created"]
CURVES = {"acc": "accuracy", "loss": "loss"}
FORMATS = {
    "test accuracy": "{:.2%}", "train s": sig3, "lr": sig3, "dropout": sig3, "label_smoothing": sig3,
}  # fmt: skip


def table(runs, labels) -> pd.DataFrame:
    rows = [
        row(r, labels) if r.config else {"name": ui.run_name(r, labels), "key": r.key, "status": r.status, "launched by": r.owner}
        for r in runs
    ]
    frame = pd.DataFrame(rows, columns=[*FIRST, *CONFIG, *LAST])
    readable = [r for r in rows if "model" in r]
    return frame[[*FIRST, *differing(readable, CONFIG), *LAST]]


def row(r, labels) -> dict:
    """A run's line in the table; an unreadable run keeps whatever of its config could be read."""
    c = r.config
    values = {name: getattr(c, name) for name in CONFIG if name not in ("conv", "hidden")}
    return {
        **values,
        "name": ui.run_name(r, labels),
        "key": r.key,
        "status": r.status,
        "launched by": r.owner,
        "test accuracy": r.accuracy,
        "train s": r.train_seconds,
        "conv": "-".join(str(b[0]) for b in c.conv) if c.model == "cnn" else "",
        "hidden": "-".join(map(str, c.hidden)),
        "tags": ", ".join(labels[r.key].tags) if r.key in labels else "",
        "dataset": datasets.base_name(c.dataset),
        "created": pd.to_datetime(r.created, unit="s", errors="coerce"),
    }


@st.dialog("Delete runs for good?")
def confirm_delete(keys: list[str]) -> None:
    """Names the runs, deletes them on a second click; the page then says what was deleted."""
    store, labels = ui.store(), ui.store().all_labels()
    runs = [r for r in (store.get(k) for k in keys) if r is not None]
    st.markdown(
        f"This removes {len(runs)} run{'s' * (len(runs) != 1)}, with {'their' if len(runs) > 1 else 'its'} metrics and weights:"
    )
    st.text("\n".join(f"• {ui.run_name(r, labels)} ({r.key[:8]})" for r in runs))
    others = sorted({r.owner or "nobody" for r in runs if not ui.may_touch(r.owner)})
    left, right = st.columns(2)
    clicked = left.button("Delete", type="primary", key="delete_confirm", icon=":material/delete:", width="stretch")
    action = "delete_" + hashlib.sha256(" ".join(sorted(keys)).encode()).hexdigest()[:12]
    owner = ", ".join(others) if others else ui.who()  # someone else's among them: the host's right
    if ui.guarded(action, owner, clicked, "Some of these runs" if len(runs) > 1 else "This run"):
        busy = [r for r in runs if r.is_live()]  # a row whose process is gone is not training
        gone = [r for r in runs if not r.is_live()]
        for run in gone:
            store.delete(run.key)
        flash = f"Deleted {len(gone)} run{'s' * (len(gone) != 1)}: " + "; ".join(ui.run_name(r, labels) for r in gone) + "."
        if busy:
            flash += f" {len(busy)} still training {'were' if len(busy) > 1 else 'was'} kept: cancel {'them' if len(busy) > 1 else 'it'} first."
        st.session_state["compare_flash"] = flash
        st.session_state.pop("runs_table", None)  # the rows it selected are gone
        st.rerun()
    if right.button("Keep them", key="delete_cancel", width="stretch"):
        st.rerun()


def overlay_ui(store, picked: list, labels) -> None:
    """The ticked runs' curves per step on one chart, as the Train page draws one run's."""
    metric = st.radio("Curve", list(CURVES), format_func=CURVES.get, key="overlay_metric", horizontal=True)
    drawn, stopped = {}, []
    for run in picked:
        steps = store.steps(run.key, max_rows=CHART_STEPS)
        if not steps or run.config is None:
            continue
        series = charts.curve_series(steps, store.epochs(run.key), run.config.steps_per_epoch(), run.config.label_smoothing)
        end = None
        if run.status in (*Status.neutral(), *Status.problems()) or run.is_active():
            end = f"{run.status} at epoch {series['step_x'][-1]:.2f} of {run.config.epochs}"
            stopped.append(f"{ui.run_name(run, labels)}: {end}")
        name = ui.run_name(run, labels)
        drawn[name if name not in drawn else f"{name} ({run.key[:8]})"] = {"series": series, "stopped": end}
    if not drawn:
        st.info("None of the ticked runs has recorded a step yet.")
        return
    best = max(drawn.items(), key=lambda kv: next((v for v in reversed(kv[1]["series"]["acc"]["val"]) if v), 0) or 0)
    alt = f"{CURVES[metric].capitalize()} of {len(drawn)} runs per training step; best validation: {best[0]}."
    st.plotly_chart(charts.overlay(drawn, metric), key="overlay", alt=alt, config=ui.QUIET)
    st.caption(
        f"Lines: the train {CURVES[metric]} per step, smoothed; diamonds: validation after each epoch. Best validation "
        f"accuracy here: {ui.escaped(best[0])}."
        + (" Drawn to where they stopped: " + "; ".join(ui.escaped(s) for s in stopped) + "." if stopped else "")
    )


def filtered(df: pd.DataFrame, runs, labels) -> pd.DataFrame:
    """The table's rows the search and filters keep."""
    words = st.text_input("Search names, notes and tags", key="compare_search", placeholder="e.g. baseline, or a word of a note")
    f1, f2, f3 = st.columns(3)
    if st.toggle("Only mine", key="compare_mine", help=f"Runs launched first by {ui.who()}"):
        df = df[df["launched by"] == ui.who()]
    statuses = f1.multiselect("Status", [s for s in Status if s in set(df.status)], key="filter_status")
    datasets = f2.multiselect("Data set", sorted(set(df.dataset.dropna())), key="filter_dataset")
    kinds = f3.multiselect("Model kind", sorted(set(df.model.dropna())), key="filter_model")
    mask = df.key.isin({r.key for r in ui.search_runs(runs, words, labels)})
    for column, chosen in (("status", statuses), ("dataset", datasets), ("model", kinds)):
        if chosen:
            mask &= df[column].isin(chosen)
    return df[mask]


def main() -> None:
    st.title("Compare", anchor=False)
    store = ui.store()
    if flash := st.session_state.pop("compare_flash", None):  # first: deleting the last run says so too
        st.success(ui.escaped(flash), icon=":material/delete:")
    runs = ui.runs_or_hint("No runs yet: train some on the Train page, then compare them here.")
    if not runs:
        return
    labels = store.all_labels()
    df = table(runs, labels)
    by_key = {r.key: r for r in runs}
    shown = filtered(df, runs, labels)
    st.caption(
        f"{len(shown)} of {len(df)} runs; the settings that differ between them come first. Click a column header to "
        "sort; tick rows (the boxes on the left) to overlay their curves or delete them."
    )
    event = st.dataframe(
        shown.style.format(FORMATS, na_rep="-"),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key="runs_table",
    )
    rows = event.selection.rows if event else []
    picked = [by_key[shown.iloc[r]["key"]] for r in rows if r < len(shown)]  # a selection can outlive a filter change
    if picked:
        overlay_ui(store, picked, labels)
        count = f"{len(picked)} selected run{'s' * (len(picked) > 1)}"
        if st.button(f"Delete {count}…", key="delete", icon=":material/delete:"):
            confirm_delete([r.key for r in picked])
    else:
        st.info("Tick one or more rows to overlay their curves.")
    hyperparameters_ui(df, by_key)


def hyperparameters_ui(df: pd.DataFrame, by_key: dict) -> None:
    finished = df[[by_key[k].has_weights() for k in df.key]]
    if len(finished) < 2:
        return
    st.subheader("Settings against test accuracy")
    rows = finished.to_dict("records")
    best = max(rows, key=lambda r: r["test accuracy"])
    varied = [name for name in differing(rows, HYPER) if len({repr(r[name]) for r in rows}) > 1] or HYPER[:1]
    st.plotly_chart(
        charts.hyperparameters(rows, varied),
        key="parcoords",
        config=ui.QUIET,
        alt=f"Parallel coordinates of {len(rows)} finished runs' settings against test accuracy; best {best['test accuracy']:.2%}.",
    )
    st.caption(
        f"One line per finished run, through the settings that differ to its test accuracy (colour). Best: "
        f"{ui.escaped(best['name'])}, {best['test accuracy']:.2%}. Drag along an axis to pick a range."
    )


main()
