"""Sweep: search hyperparameters around a config; a live table of trials, best so far, parallel coordinates, importances."""

from __future__ import annotations

import dataclasses
import os

import pandas as pd
import streamlit as st

import ui
from nnapp.cli.sweep import RAY_ENV
from nnapp.engine.config import RunConfig
from nnapp.engine.device import cpu_count
from nnapp.engine.explain import FIELD_HELP
from nnapp.engine.names import default_name
from nnapp.engine.presets import PRESETS
from nnapp.engine.states import ICONS, TaskKind
from nnapp.sweep.files import load_spec, new_name, save_spec, sweep_names
from nnapp.sweep.report import best, figures, progress, trial_rows
from nnapp.sweep.spec import DEFAULT_RANGES, OBJECTIVES, PRUNERS, SAMPLERS, SEARCHABLE, Param, SweepError, SweepSpec, parse_param
from nnapp.sweep.study import read_study, target
from nnapp.system.errors import StoreError
from nnapp.system.files import os_error_text

TRAIN_CONFIG = "(the Train page's config)"
SYNTAX = "LOW:HIGH, or LOW:HIGH:log for a log scale, or a list A,B,C. Layer stacks: widths joined by '-' (256-128)."
TEST_NOTE = (
    "Trials are compared on their validation score only. The test score is shown for the best trial: choosing "
    "among trials by it would overfit the test set, and it would stop measuring how the model does on new digits."
)


def base_ui() -> tuple[RunConfig, str]:
    """The config the sweep searches around, and a label for the sweep's name."""
    sources = [*PRESETS, *([TRAIN_CONFIG] if "train_config" in st.session_state else [])]
    source = st.selectbox(
        "Start from", sources, index=sources.index("fast"), key="sweep_base",
        help="The config every trial starts from; the sweep changes only the fields picked below.",
    )  # fmt: skip
    base = RunConfig.from_dict(st.session_state["train_config"]) if source == TRAIN_CONFIG else PRESETS[source]
    st.caption(ui.escaped(default_name(base)))
    subset = st.number_input(
        "Training images per trial (0 = all)",
        0,
        base.data_spec().train_size,
        base.train_subset,
        1000,
        key=f"sweep_subset_{source}",
        help="Fewer images make each trial quicker; the best config can then be trained on all of them.",
    )
    return base.replace(train_subset=int(subset)), "train" if source == TRAIN_CONFIG else source


def params_ui(base: RunConfig) -> tuple[tuple[Param, ...], bool]:
    """A range or list per picked field; returns the params and whether every one of them reads."""
    fields = st.multiselect(
        "Fields to search",
        SEARCHABLE,
        default=["lr", "batch_size"],
        key="sweep_fields",
        help="The settings the sweep tries different values of; every other setting stays as in the config above.",
    )
    params, ok = [], True
    for name in fields:
        key = f"sweep_range_{name}"
        st.session_state.setdefault(key, DEFAULT_RANGES.get(name, str(getattr(base, name)).lower()))
        text = st.text_input(name, key=key, help=f"{FIELD_HELP.get(name, '')}\n\nValues to try: {SYNTAX}")
        try:
            params.append(parse_param(f"{name}={text}"))
        except SweepError as err:
            st.error(ui.escaped(next(iter(err.problems.values()))), icon=":material/error:")
            ok = False
    return tuple(params), ok


def search_ui() -> dict:
    """Sampler, pruner, objective, how many trials, how many at once, and where."""
    left, right = st.columns(2)
    sampler = left.radio(
        "Sampler", list(SAMPLERS), index=2, key="sweep_sampler", horizontal=True,
        help="How the next values to try are chosen; tpe learns from the trials so far and usually finds good ones "
        "in fewer trials.\n\n" + _help(SAMPLERS),
    )  # fmt: skip
    pruner = right.radio(
        "Pruner", list(PRUNERS), key="sweep_pruner", horizontal=True,
        help="Whether trials that look worse than others after an epoch are stopped early; saves time, at the risk "
        "of stopping a slow starter.\n\n" + _help(PRUNERS),
    )  # fmt: skip
    objective = left.selectbox(
        "Objective", list(OBJECTIVES), format_func=lambda o: OBJECTIVES[o].title, key="sweep_objective",
        help="The score trials are compared on, measured on the validation images (never the test images).",
    )  # fmt: skip
    trials = right.number_input(
        "Trials", 1, 1000, 8, key="sweep_trials_n", help="How many configs to train; more finds better ones, taking longer."
    )
    cores = cpu_count()
    parallel = left.number_input(
        "Parallel trials",
        1,
        64,
        min(2, cores),
        key="sweep_parallel",
        help=f"How many trials train at the same time; they share this machine's {cores} cores, so more at once is "
        "not always faster.",
    )
    ray = os.environ.get(RAY_ENV, "")
    where = right.radio(
        "Where", ["this machine", *([f"Ray cluster at {ray}"] if ray else [])], key="sweep_where",
        help="Train the trials here, or on the Ray cluster named by NNAPP_RAY_ADDRESS.",
    )  # fmt: skip
    return dict(
        sampler=sampler,
        pruner=pruner,
        objective=objective,
        trials=int(trials),
        parallel=int(parallel),
        ray=ray if where != "this machine" else "",
    )


def _help(table) -> str:
    return "\n".join(f"- **{name}**: {spec.help}" for name, spec in table.items())


def new_sweep_ui() -> None:
    base, label = base_ui()
    params, readable = params_ui(base)
    spec = SweepSpec("unnamed", base, params, **search_ui())
    problems = spec.problems() if readable else {}
    problems_ui(problems)
    if readable and not problems and spec.sampler == "grid":
        st.caption(
            f"The grid holds {spec.grid_size():,} configs; the sweep trains {target(spec):,} of them, in a shuffled order."
        )
    st.caption("Trials are compared on their validation score; the test set is kept for the best trial's report.")
    if st.button("Start sweep", type="primary", disabled=bool(problems) or not readable, key="sweep_start"):
        try:
            spec = dataclasses.replace(spec, name=new_name(ui.store().home, label, params))
            save_spec(ui.store().home, spec)
            ui.sweeps().submit_task(TaskKind.SWEEP, spec.key, spec.to_dict(), owner=ui.who())
        except (OSError, StoreError) as err:  # a full disk or a read-only store: one sentence, the form kept
            st.error(f"The sweep could not be started: {ui.escaped(os_error_text(err) if isinstance(err, OSError) else err)}")
            return
        st.session_state["sweep_pick"] = spec.name


def problems_ui(problems: dict[str, str]) -> None:
    """Each problem as a sentence naming the part at fault (the user's own text shown as text)."""
    for part, message in problems.items():
        shown = part.removeprefix("--param ").removeprefix("--")
        st.error(f"{ui.escaped(shown)}: {ui.escaped(message)}", icon=":material/error:")


def controls(spec: SweepSpec, task, done: int) -> None:
    """Stop a running sweep; resume a stopped one; add trials to a finished one."""
    if task is not None and task.owner:
        st.caption(f"Started by {ui.escaped(task.owner)}: its trials are {ui.escaped(task.owner)}'s jobs in the queue.")
    if task is not None and task.is_active():
        clicked = st.button("Stop", key="sweep_stop")
        if ui.guarded(f"stop_{spec.key}", task.owner, clicked, f"Sweep {ui.escaped(spec.name)}"):
            ui.sweeps().cancel(spec.key)
            st.toast("Stopping: the running trials are cancelled, their curves kept.")
    elif task is None or task.is_problem():
        if task is not None:
            st.error(f"{task.status}: {ui.escaped(task.message or 'no details')}")
        again = fitted(spec)
        problems = again.problems()
        problems_ui(problems)
        tip = "cancelled and interrupted trials are asked again first"
        if st.button("Resume", key="sweep_resume", help=tip, disabled=bool(problems)):
            resume(again)
    elif task is not None and task.is_done():
        more = st.number_input("More trials", 1, 1000, 4, key="sweep_more")
        extended = fitted(dataclasses.replace(spec, trials=done + int(more)))
        problems = extended.problems()
        problems_ui(problems)
        if st.button("Add trials", key="sweep_add", disabled=bool(problems)):
            resume(extended, force=True)


def fitted(spec: SweepSpec) -> SweepSpec:
    """`spec` to go on with here: no more trials at once than this machine takes (it may have been started
    on a bigger one), said when that is fewer."""
    if spec.ray:
        return spec
    cap, why = spec.parallel_cap()
    if spec.parallel <= cap:
        return spec
    st.caption(f"Goes on {cap} at a time: {ui.escaped(why)}.")
    return dataclasses.replace(spec, parallel=cap)


def resume(spec: SweepSpec, force: bool = False) -> None:
    save_spec(ui.store().home, spec)
    ui.sweeps().submit_task(TaskKind.SWEEP, spec.key, spec.to_dict(), force=force, owner=ui.who())
    st.rerun()


def best_ui(study, spec: SweepSpec) -> None:
    found = best(study, ui.store())
    if found is None:
        st.caption("No trial has finished yet.")
        return
    run, title = found["run"], OBJECTIVES[spec.objective].title
    cols = st.columns(3)
    cols[0].metric(f"Best {title}", f"{found['value']:.4f}", help=f"trial {found['number']}")
    cols[1].metric("Its test accuracy", f"{run.accuracy * 100:.2f}%" if run and run.accuracy is not None else "-")
    cols[2].metric("Trial", found["number"])
    st.caption(
        ui.escaped(", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in found["params"].items()))
    )
    st.caption(TEST_NOTE)
    left, right = st.columns(2)
    if run is not None and left.button("Open the best trial in Results", key="sweep_best_results"):
        ui.open_results(run.key)
    if run is not None and right.button("Train the best config on all data", key="sweep_best_all"):
        submission = ui.jobs().submit(run.config.replace(train_subset=0), owner=ui.who())
        ui.open_train(watch=submission.key)


def table_ui(study, spec: SweepSpec) -> None:
    rows = trial_rows(study, ui.store(), spec)
    floats = [p.field for p in spec.params if p.low is not None and isinstance(p.low, float)]
    formats = {spec.objective: "%.4f", "seconds": "%.1f", **dict.fromkeys(floats, "%.3g")}
    event = st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="sweep_table",
        column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in formats.items()},
    )
    picked = [rows[i] for i in (event.selection.rows if event else []) if i < len(rows)]
    run = ui.store().get(picked[0]["key"]) if picked and picked[0]["key"] else None
    if run is None:
        st.caption("Select a trial to open its run in Results or the Playground.")
        return
    left, right = st.columns(2)
    if left.button(f"Open trial {picked[0]['trial']} in Results", key="sweep_open_results"):
        ui.open_results(run.key)
    if right.button("Open in the Playground", key="sweep_open_playground", disabled=not run.has_weights()):
        ui.open_playground(run.key)


def charts_ui(study, spec: SweepSpec) -> None:
    figs = figures(study, spec)
    if not figs:
        st.caption("Charts appear once trials have finished.")
        return
    for tab, (title, fig) in zip(st.tabs(list(figs)), figs.items(), strict=True):
        tab.plotly_chart(
            fig,
            key=f"sweep_chart_{title}",
            alt=f"Optuna's {title} chart of this sweep's trials; the table above holds its numbers.",
            config=ui.QUIET,
        )


def sweep_view(name: str) -> None:
    """One sweep: status and controls, best trial, the trials, the charts; rerun every second while it runs."""
    store = ui.store()
    try:
        spec = load_spec(store.home, name)
        task, study = store.tasks.get(spec.key), read_study(store.home, name)
    except SweepError as err:  # a damaged sweep.json or journal: one sentence, the other sweeps still open
        st.error(ui.escaped(next(iter(err.problems.values()))))
        return
    active = task is not None and task.is_active()
    if st.session_state.get("sweep_live") == name and not active:
        st.session_state["sweep_live"] = None
        st.rerun()  # a full rerun draws the view again without the one-second refresh
    done, target = progress(study, spec)
    status = task.status if task else "not started"
    st.subheader(f"{ICONS.get(status, '·')} {ui.escaped(name)}: {status}")
    st.caption(ui.escaped(f"{spec.base.describe()} · {spec.describe()}"))
    text = (task.progress or {}).get("text", "") if task else ""
    st.progress(
        min(done / target, 1.0), text=f"{done} of {target} trials ended" + (f" · last: {ui.escaped(text)}" if text else "")
    )
    controls(spec, task, done)
    if study is None:
        st.info("Waiting for the sweep's driver to start…")
        return
    best_ui(study, spec)
    table_ui(study, spec)
    charts_ui(study, spec)


def main() -> None:
    st.title("Sweep", anchor=False)
    store = ui.store()
    with st.expander("New sweep", expanded=not sweep_names(store.home)):
        new_sweep_ui()
    names = sweep_names(store.home)
    if not names:
        st.info("No sweeps yet: pick the fields to search above and start one.")
        return
    if st.session_state.get("sweep_pick") not in names:
        st.session_state["sweep_pick"] = names[0]
    name = st.selectbox("Sweep", names, key="sweep_pick", help="newest first")
    task = store.tasks.get(f"sweep:{name}")
    if task is not None and task.is_active():
        st.session_state["sweep_live"] = name
    st.fragment(run_every=1.0 if st.session_state.get("sweep_live") == name else None)(sweep_view)(name)


main()
