"""The learning-rate finder on the Train page: a range test of the config in the form, in a background job."""

from __future__ import annotations

import streamlit as st

import ui
from nnapp.charts import inside as charts_inside
from nnapp.engine import datasets
from nnapp.engine.config import RunConfig
from nnapp.engine.states import TaskKind
from nnapp.inside.lrfind import lr_find_payload
from panels.tasks import task_progress


def use_rate(lr: float) -> None:
    """Put a learning rate into the form's field (a button callback: it runs before the widget is drawn)."""
    st.session_state["cfg_lr"] = lr
    st.session_state["form"]["lr"] = lr


def lr_finder_ui(config: RunConfig, disabled: bool = False) -> None:
    """The button, then the test's progress, its plot with the suggestion, and the button that uses it."""
    key, payload = lr_find_payload(config)
    store = ui.store()
    task = store.tasks.get(key)
    if task is None or task.is_problem():
        if task is not None:
            st.error(f"The learning-rate finder {task.status}: {ui.escaped(task.message or 'no details')}")
        help_text = "Train about 100 steps while the rate grows from 1e-7 to 10, and suggest where the loss falls fastest."
        if st.button("Find a learning rate", key="lr_find", icon=":material/search_insights:", disabled=disabled, help=help_text):
            if datasets.is_ref(config.dataset):
                store.freeze(config.dataset)  # the version the form shows, whatever is drawn meanwhile
            ui.jobs().submit_task(TaskKind.LR_FIND, key, payload, force=task is not None, owner=ui.who())
            st.rerun()
        return
    if task.is_active():
        task_progress(key, "Finding a learning rate", "lr_find_cancel")
        return
    result = task.result or {}
    if not result.get("lrs"):
        st.warning("The learning-rate finder stopped before it recorded a step.")
        return
    st.markdown("**Learning-rate finder**")
    suggested = f"suggests {result['suggestion']:.1e}" if result.get("suggestion") else "has no suggestion"
    st.plotly_chart(
        charts_inside.lr_finder(result, current=config.lr),
        key="lr_find_chart",
        alt=f"Training loss against learning rate over {len(result['lrs'])} steps; the finder {suggested}.",
        config=ui.QUIET,
    )
    suggestion = result.get("suggestion")
    if suggestion is None:
        st.warning(result["message"])
        return
    rounded = float(f"{suggestion:.1e}")
    left, right = st.columns([1, 2])
    left.button(
        f"Use {rounded:.1e}",
        key="lr_use",
        type="secondary" if config.lr == rounded else "primary",
        on_click=use_rate,
        args=(rounded,),
    )
    exploded = ", until the loss exploded" if result.get("stopped") == "exploded" else ""
    right.caption(
        f"{result['message']} The test trained {len(result['lrs'])} steps from the config's starting weights, one batch "
        f"each{exploded}, ignoring its schedule. The smoothed loss is a moving average of the loss per step, so it "
        "trails it; its steepest fall is the point fastai's 'steep' and torch-lr-finder suggest."
    )
