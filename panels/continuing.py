"""Continue a finished run for more epochs, on the Train page: a new run from its weights that records it as
its parent (Results joins their curves)."""

from __future__ import annotations

import streamlit as st

import ui
from nnapp.engine import datasets
from nnapp.engine.checks import check
from nnapp.engine.config import RunConfig
from nnapp.jobs.runs import continue_config, continue_problem
from nnapp.system.errors import DataError, StoreError

FORM = "configure"  # the Train page's Configure expander: folded once a run is launched from here


def continue_ui() -> None:
    """Pick a finished run and how many more epochs; one of your data sets may bring the examples added since."""
    runs = [r for r in ui.store().runs() if r.has_weights()]
    wanted = st.session_state.pop("continue_run", None)
    if not runs:
        return
    if wanted in {r.key for r in runs}:
        st.session_state["continue_pick"] = wanted
    with st.expander("Continue a finished run for more epochs", expanded=wanted is not None):
        run = ui.pick_run(runs, "continue_pick", label="Run to continue")
        if st.session_state.get("continue_for") != run.key:  # a new pick: its own epoch count to start from
            st.session_state["continue_for"], st.session_state["continue_epochs"] = run.key, run.config.epochs
        epochs = st.number_input("More epochs", 1, 1000, step=1, key="continue_epochs")
        config = continue_config(run.config, run.key, int(epochs))
        current = ui.store().data_set(datasets.base_name(run.config.dataset)) if datasets.is_ref(run.config.dataset) else None
        if current is not None and current.ref != run.config.dataset:
            newer = f"Learn from the examples added since too ({current.total:,} now)"
            if st.checkbox(ui.escaped(newer), key="continue_newer"):
                config = config.replace(dataset=current.ref)
        problem = continue_problem(run.config, config) or "; ".join(f"{k}: {v}" for k, v in check(config).problems.items())
        st.caption(
            f"A new run starting from {run.key[:8]}'s weights: {ui.escaped(config.describe())}, learning rate "
            f"{config.lr:g} ({config.schedule}); the optimiser starts afresh. Results draws its curves after the run's."
        )
        if problem:
            st.error(ui.escaped(problem))
        st.button("Continue", key="continue_go", disabled=bool(problem), on_click=on_continue, args=(config.to_dict(),))
        if error := st.session_state.pop("continue_error", None):
            st.error(error)


def on_continue(config: dict) -> None:
    """Submit the continued run and watch it (a callback: the form folds before it is drawn again)."""
    state = st.session_state
    try:
        submission = ui.jobs().submit(RunConfig.from_dict(config), owner=ui.who())
    except (ValueError, StoreError, DataError) as err:
        state["continue_error"] = str(err)
        return
    state["watch_run"], state["launch_state"], state[FORM] = submission.key, submission.state, False
    state.pop("end_waited", None)
