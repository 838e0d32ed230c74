"""Train: configure data, architecture and hyperparameters; launch; live progress; cancel."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

import ui
from nnapp.engine import datasets
from nnapp.engine.arch import summary
from nnapp.engine.checks import check
from nnapp.engine.config import MODEL_KINDS, PADDINGS, PRECISIONS, RunConfig
from nnapp.engine.explain import FIELD_HELP
from nnapp.engine.limits import estimate, size_text
from nnapp.engine.names import default_name, sig3
from nnapp.engine.presets import DEFAULT_PRESET, PRESETS, SMALL_DATA, SMALL_DATA_WHY, small_data
from nnapp.engine.records import Run
from nnapp.engine.registry import ACTIVATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULES
from nnapp.engine.states import ClaimState, Status
from nnapp.jobs.runs import wait_for_run
from nnapp.system.errors import StoreError
from panels import live
from panels.continuing import continue_ui
from panels.curves import curves_chart
from panels.layers import edited_rows, table_frame
from panels.lrfind import lr_finder_ui
from panels.queue import queue_ui
from ui import CHART_STEPS

# Fields set by one plain widget each (layers are tables, handled apart).
SIMPLE = [
    "dataset", "val_fraction", "train_subset", "model", "padding", "activation", "dropout", "batch_norm",
    "optimizer", "lr", "momentum", "weight_decay", "schedule", "batch_size", "epochs", "loss",
    "label_smoothing", "patience", "augment", "precision", "seed",
]  # fmt: skip
CUSTOM = "(custom)"
# Seconds between refreshes of a live run's status and curves where the live route is not served. A launch and
# a run's end are not found by refreshing more often: the launch waits for the first step before the page is
# drawn, and a refresh near the ETA waits for the end.
STATUS_EVERY = 2.0
FIRST_STEP_WAIT = 1.5  # seconds a launch waits for its job's first step
END_WAIT = 4.0  # seconds past its ETA that a refresh waits for a run to end (validation and test included)
LIVE_POINTS = live.POINTS  # per-step points in a live curve (CHART_STEPS once it has ended)
FORM = "configure"  # the Configure expander's key: whether the form is open


def apply_config(config: RunConfig) -> None:
    """Put a config's values into the widgets (a data set of yours by its name: the form names its current version)."""
    config = config.replace(dataset=datasets.base_name(config.dataset))
    st.session_state["form"] = {name: getattr(config, name) for name in SIMPLE}
    for name in SIMPLE:
        st.session_state[f"cfg_{name}"] = getattr(config, name)
    st.session_state["base_conv"] = config.conv
    st.session_state["base_hidden"] = config.hidden
    st.session_state["layers_version"] = st.session_state.get("layers_version", 0) + 1


def on_preset() -> None:
    """A preset's values, on the data set chosen."""
    name, dataset = st.session_state["preset"], st.session_state.get("cfg_dataset", "mnist")
    if name == SMALL_DATA and (mine := ui.store().data_set(dataset)) is not None:
        apply_config(small_data(mine.ref))  # its batch fitted to the data set's size
    elif name in PRESETS:
        apply_config(PRESETS[name].replace(dataset=dataset))


def own_names() -> list[str]:
    """The names of your data sets, as the Data set choice offers them."""
    return [d.name for d in ui.store().data_sets()]


def choose_dataset(name: str) -> None:
    """Train on data set `name`: one of yours starts from the small-data preset (the page says why)."""
    if (mine := ui.store().data_set(name)) is not None:
        st.session_state["preset"] = SMALL_DATA
        apply_config(small_data(mine.ref))
    else:
        st.session_state["cfg_dataset"] = st.session_state["form"]["dataset"] = name


def on_dataset() -> None:
    """Switching to a data set of yours brings the small-data preset with it, fitted to its size."""
    name, before = st.session_state["cfg_dataset"], st.session_state["form"]["dataset"]
    if name != before and name in own_names():
        choose_dataset(name)


def closest_preset(config: RunConfig) -> str:
    """The preset that differs from `config` in the fewest fields: the form's label says '<it>, edited'."""
    differs = lambda preset: sum(a != b for a, b in zip(preset.to_dict().values(), config.to_dict().values(), strict=True))  # noqa: E731
    return min(PRESETS, key=lambda name: differs(PRESETS[name]))


def follow_run(key: str | None) -> None:
    """The form holds the config of the run the page shows: after Sweep's "Train the best config on all data",
    Home's one click, Results' "Train a variant", or a reload that attached to a training run. Once per run
    shown, so edits made since stay."""
    state = st.session_state
    if key is None or state.get("form_run") == key:
        return
    state["form_run"] = key
    run = live.record(ui.store(), key)
    if run is None or run.config is None:
        return
    try:
        same = form_config() == run.config
    except ValueError:
        same = False
    if not same:
        apply_config(run.config)
        state["preset"] = closest_preset(run.config)


class Slots:
    """A placeholder under each widget where its validation problem is shown."""

    def __init__(self):
        self.slots: dict[str, st.delta_generator.DeltaGenerator] = {}

    def widget(self, name: str, fn, label: str, *args, **kwargs):
        # Streamlit forgets the state of a widget that is not drawn in a run (momentum while the optimizer
        # is Adam, say), so the form keeps every value and seeds the widget when it comes back.
        form = st.session_state["form"]
        st.session_state.setdefault(f"cfg_{name}", form[name])
        kwargs["help"] = FIELD_HELP[name] + (f"\n\n{kwargs['help']}" if kwargs.get("help") else "")
        value = form[name] = getattr(st, fn)(label, *args, key=f"cfg_{name}", **kwargs)
        self.slots[name] = st.empty()
        return value

    def show(self, problems: dict[str, str]) -> None:
        for name, message in problems.items():
            if name in self.slots:
                self.slots[name].error(ui.escaped(message), icon=":material/error:")


CONV_COLUMNS = ["channels", "kernel", "pool"]


def table_key(name: str) -> str:
    return f"{name}_table_{st.session_state['layers_version']}"


def table_rows(name: str, rows: list[tuple], columns: list[str]) -> tuple[list[tuple[int, ...]], int]:
    """A layers table's complete rows from its drawn rows and the edits the browser sent (its widget state,
    which a callback reads before the table is drawn again); and how many rows were skipped."""
    return edited_rows(rows, columns, st.session_state.get(table_key(name)))


def layers_table(name: str, rows: list[tuple], columns: list[str], config: dict) -> None:
    """An editable table of layers (add, delete, reorder by the position column); incomplete rows are skipped."""
    column_config = {"position": st.column_config.NumberColumn("position", help="rows are ordered by this", step=1)}
    column_config.update({c: st.column_config.NumberColumn(c, step=1, **config.get(c, {})) for c in columns})
    key = table_key(name)
    st.data_editor(
        table_frame(rows, columns), num_rows="dynamic", hide_index=True, column_config=column_config, key=key, width="stretch"
    )
    if table_rows(name, rows, columns)[1]:
        st.caption("Rows with an empty cell are ignored.")


def registry_help(registry) -> str:
    def line(name, spec):
        lr = f" (learning rate about {spec.lr:g})" if hasattr(spec, "lr") else ""
        return f"- **{name}**: {spec.help}{lr}"

    return "\n".join(line(name, spec) for name, spec in registry.items())


def data_ui(slots: Slots) -> None:
    st.subheader("Data")
    mine = {d.name: d for d in ui.store().data_sets()}
    titles = {n: spec.title for n, spec in DATASETS.items()}
    titles |= {n: f"{n} (yours: {len(d.classes)} classes, {d.total:,} examples)" for n, d in mine.items()}
    dataset = slots.widget("dataset", "selectbox", "Data set", list(titles), format_func=titles.get, on_change=on_dataset)
    if dataset in mine:
        st.caption(SMALL_DATA_WHY)
        if st.button("Open it on the Data page", key="open_data", icon=":material/category:"):
            st.session_state["data_name"] = dataset
            st.switch_page(ui.PAGES["data"].path)
    slots.widget("val_fraction", "slider", "Validation share", 0.01, 0.49, step=0.01)
    slots.widget("train_subset", "number_input", "Training images (0 = all)", step=1000)
    slots.widget("augment", "checkbox", "Augmentation (random affine)")
    slots.widget("seed", "number_input", "Seed", step=1)


def model_ui(slots: Slots) -> None:
    """The model widgets, the layer tables among them."""
    st.subheader("Model")
    kind = slots.widget("model", "radio", "Kind", MODEL_KINDS, horizontal=True, format_func=str.upper)
    conv = list(st.session_state["base_conv"])
    if kind == "cnn":
        st.caption("Conv blocks", help=f"{FIELD_HELP['conv']}\n\nChannels, an odd kernel size, a max-pool size (1: none).")
        limits = {
            "channels": {"min_value": 1, "max_value": 1024},
            "kernel": {"min_value": 1, "max_value": 27},
            "pool": {"min_value": 1, "max_value": 8},
        }
        layers_table("conv", conv, CONV_COLUMNS, limits)
        slots.slots["conv"] = st.empty()
        slots.widget("padding", "radio", "Padding", PADDINGS, horizontal=True)
    st.caption("Hidden layers", help=FIELD_HELP["hidden"] + ("\n\nThe head after the conv blocks." if kind == "cnn" else ""))
    rows = [(w,) for w in st.session_state["base_hidden"]]
    layers_table("hidden", rows, ["width"], {"width": {"min_value": 1, "max_value": 8192}})
    slots.slots["hidden"] = st.empty()
    slots.widget("activation", "selectbox", "Activation", ACTIVATIONS.names(), help=registry_help(ACTIVATIONS))
    slots.widget("dropout", "slider", "Dropout", 0.0, 0.9, step=0.05)
    slots.widget("batch_norm", "checkbox", "Batch norm")


def optimisation_ui(slots: Slots) -> None:
    st.subheader("Optimisation")
    optimizer = slots.widget("optimizer", "selectbox", "Optimizer", OPTIMIZERS.names(), help=registry_help(OPTIMIZERS))
    slots.widget("lr", "number_input", "Learning rate", format="%.2e", step=1e-4)  # three significant digits
    if OPTIMIZERS[optimizer].momentum:
        slots.widget("momentum", "slider", "Momentum", 0.0, 0.99, step=0.01)
    slots.widget("weight_decay", "number_input", "Weight decay", format="%.2e", step=1e-3)
    slots.widget("schedule", "selectbox", "LR schedule", SCHEDULES.names(), help=registry_help(SCHEDULES))
    slots.widget("batch_size", "number_input", "Batch size", step=32)
    slots.widget("epochs", "number_input", "Epochs", step=1)
    loss = slots.widget("loss", "selectbox", "Loss", LOSSES.names(), help=registry_help(LOSSES))
    if LOSSES[loss].smoothing:
        slots.widget("label_smoothing", "slider", "Label smoothing", 0.0, 0.5, step=0.05)
    slots.widget("patience", "number_input", "Early-stopping patience (0 = off)", step=1)
    slots.widget("precision", "selectbox", "Precision", PRECISIONS)


def form_config() -> RunConfig:
    """The config the form holds, read from its widgets' state: the same in the script, where the widgets
    have just been drawn, and in the Launch button's callback, which runs before they are drawn again."""
    state = st.session_state
    values = {name: state.get(f"cfg_{name}", state["form"][name]) for name in SIMPLE}
    if not LOSSES[values["loss"]].smoothing:
        values["label_smoothing"] = 0.0
    if values["dataset"] not in DATASETS and (mine := ui.store().data_set(values["dataset"])) is not None:
        values["dataset"] = mine.ref  # the version the form shows now: drawing more makes a new one
    conv, hidden = form_layers(values["model"])
    return RunConfig.from_dict({**values, "conv": [list(c) for c in conv], "hidden": hidden})


def form_layers(model: str) -> tuple[list[tuple[int, ...]], list[int]]:
    """The conv blocks and hidden widths the layer tables hold (the conv table only while `model` is a CNN)."""
    state = st.session_state
    conv = list(state["base_conv"])
    if model == "cnn":
        conv = table_rows("conv", conv, CONV_COLUMNS)[0]
    hidden = table_rows("hidden", [(w,) for w in state["base_hidden"]], ["width"])[0]
    return conv, [h[0] for h in hidden]


def config_ui() -> tuple[RunConfig, Slots]:
    """Every widget of the form; returns the config they describe."""
    slots = Slots()
    data_col, model_col, opt_col = st.columns([1, 1.3, 1])
    with data_col:
        data_ui(slots)
    with model_col:
        model_ui(slots)
    with opt_col:
        optimisation_ui(slots)
    return form_config(), slots


def fold_form() -> None:
    """Keep what the form holds while it is folded and not drawn: Streamlit forgets the state of a widget
    it does not draw, so the simple fields' values go to the form's values, the layer tables' rows become
    their base (the tables are drawn afresh when the form opens); the preset and Retrain widgets keep their
    own (`persist_state`)."""
    state = st.session_state
    state["form"].update({name: state[f"cfg_{name}"] for name in SIMPLE if f"cfg_{name}" in state})
    if table_key("hidden") in state or table_key("conv") in state:
        conv, hidden = form_layers(state["form"]["model"])
        state["base_conv"], state["base_hidden"] = tuple(conv), tuple(hidden)
        state["layers_version"] += 1


def on_launch() -> None:
    """The Launch button's callback: submits the form's config, and folds the form when it was accepted, so
    the rerun the click starts draws the run's status and curves, not the form."""
    state = st.session_state
    try:
        config = form_config()
    except ValueError:  # a value of the wrong type: the form, drawn open in this rerun, says which
        return
    checked = check(config, ui.store().get)
    if not checked.ok:  # changed with the click: the form shows each problem under its field
        return
    try:
        submission = ui.jobs().submit(checked, force=state.get("force", False), owner=ui.who())
    except (ValueError, StoreError) as err:  # a config refused at launch, a read-only or damaged store
        state["launch_error"] = str(err)
        return
    state["train_config"] = config.to_dict()
    state["watch_run"] = state["form_run"] = submission.key
    state["launch_state"] = submission.state
    state[FORM] = False
    state.pop("end_waited", None)
    state.pop("live_unreachable", None)  # each launch tries the route again
    if submission.state == ClaimState.QUEUED and ui.jobs().active()[:1] == [submission.key]:  # it starts now
        wait_for_run(ui.store(), submission.key, lambda r: not (r and r.is_active() and not r.progress), FIRST_STEP_WAIT)


def wait_for_end(key: str, progress: dict) -> bool:
    """Whether the run ended, waiting for it when it should end before the next refresh: the page then
    shows the result when it is stored, not up to STATUS_EVERY seconds later. Once per run: a test phase
    longer than END_WAIT, or a process that died, is shown at the usual refreshes."""
    eta = progress.get("eta")
    if progress["step"] < progress["total_steps"] and (eta is None or eta > STATUS_EVERY):
        return False
    if st.session_state.get("end_waited") == key:
        return False
    st.session_state["end_waited"] = key
    started, timeout = time.monotonic(), (eta or 0) + END_WAIT
    ui.jobs().wait(key, timeout)  # this server's job; a run trained elsewhere is read from its record
    ended = lambda r: not (r and r.is_live())  # noqa: E731
    run = wait_for_run(ui.store(), key, ended, timeout - (time.monotonic() - started))
    return not (run and run.is_active()) and not ui.jobs().is_active(key)


def polls(run: Run | None) -> bool:
    """Whether the page shows this run's progress by polling (panels/live.py) rather than by rerunning: a
    training run, on a server that mounted the route, in a session whose page has reached it."""
    state = st.session_state
    return run is not None and run.status == Status.RUNNING and live.mounted() and not state.get("live_unreachable")


def live_status(key: str, run: Run | None, poll: bool) -> None:
    """Status, progress and Cancel for one run (`run`, its record as read now); with `poll`, the curves'
    component draws the progress bar and notices the run's end (live_curves)."""
    jobs = ui.jobs()
    if run is None:
        st.warning("That run is no longer in the store.")
        return
    if run.is_unreadable():
        st.error(f"Run {ui.escaped(run.key)} cannot be read: {ui.escaped(run.message)}")
        return
    active = jobs.is_active(key) or run.is_active()
    if st.session_state.get("live_active") == key and not active:
        st.session_state["live_active"] = None
        st.rerun()  # a full rerun redraws the page without the refreshes
    retraining = "Retraining " if run.is_retrain() else ""
    st.subheader(f"{run.icon} {retraining}{ui.escaped(ui.run_name(run))}: {run.status}")
    st.caption(
        f"run {key[:8]} · {run.config.describe()} · launched by {ui.escaped(run.owner or 'someone before names were kept')}"
    )
    if run.is_retrain():
        st.caption("The finished run stays as it was until this retrain succeeds.")
    if run.status == Status.QUEUED:
        pos = jobs.position(key)
        st.info(f"Waiting in the queue{f' (position {pos})' if pos else ''}: one run trains at a time, people in turn.")
    p = run.progress or {}
    # an ended run's bar stays where it ended (and the browser has the bar's code before a launch)
    if not poll and (p or run.status == Status.RUNNING):
        st.progress(*live.progress_text(run))
    clicked = run.is_active() and st.button("Cancel", key="cancel")
    if run.is_active() and ui.guarded(f"cancel_{key}", run.owner, clicked, f"Run {key[:8]}"):
        jobs.cancel(key)
        st.toast("Cancelling…")
    elif run.is_active() and p and not poll and wait_for_end(key, p):
        st.session_state["live_active"] = None
        st.rerun()  # the result, drawn with the whole page
    if run.has_weights():
        result_ui(run)
    elif run.status in Status.neutral():
        stopped_ui(run)
    elif run.is_problem():
        st.error(f"{run.status}: {ui.escaped(run.message or 'no details')}")


def result_ui(run: Run) -> None:
    """A finished run: its test accuracy, and the ways on to its results and to drawing for it."""
    st.success(
        f"Test accuracy **{run.accuracy * 100:.2f}%** · {sig3(run.train_seconds)} s of training on "
        + ui.escaped(f"{run.device} ({run.precision})")
    )
    left, right, _ = st.columns([1, 1, 2])
    if left.button("See its results", key="open_results", type="primary", width="stretch"):
        ui.open_results(run.key)
    draw = "Draw a digit for it" if run.config.dataset == "mnist" else "Draw for it in the Playground"
    if right.button(draw, key="open_playground", width="stretch"):
        ui.open_playground(run.key)


def stopped_ui(run: Run) -> None:
    """A cancelled run, as a pause rather than a failure: where it stopped, what it learned, and Launch again."""
    st.info(ui.escaped(ui.stopped_text(ui.store(), run)), icon=":material/pause_circle:")
    if st.button("Launch again", key="launch_again", type="primary", help="train this configuration from the start"):
        state = st.session_state
        submission = ui.jobs().submit(run.config, force=run.is_retrain(), owner=ui.who())  # a retrain: again
        state["watch_run"] = state["form_run"] = submission.key
        state["launch_state"] = submission.state
        state.pop("end_waited", None)
        st.rerun()


def live_curves(run: Run | None, points: int, poll: bool = False) -> None:
    """The run's curves, over the whole run's length while it trains; their axes alone before it has steps
    or before any launch (no run). With `poll`, the component also draws the bar and polls for both."""
    if run is not None and run.config is None:  # unreadable: live_status says so, there is nothing to draw
        return
    series, x_max, note = live.curves(ui.store(), run, points)
    bar = None
    if poll:
        url = f"{live.PATH.lstrip('/')}?run={run.key}&token={live.token(run.key)}"
        bar = {"url": url, **live.bar(run)}
    shown = curves_chart(series, x_max, note, live=bar)
    if poll and shown.ended and shown.ended.startswith("unreachable"):
        st.session_state["live_unreachable"] = True  # e.g. behind a proxy that does not pass the route
        st.rerun()


def live_view(key: str, points: int) -> None:
    """A run's status and curves, from one read of its record. While it is active the fragment reruns
    every STATUS_EVERY seconds, or, polling (polls()), only when the component says its status changed."""
    state, run = st.session_state, live.record(ui.store(), key)
    poll = polls(run)
    if poll != state.get("live_poll", poll):  # queued -> training, or the end: the fragment's pace changes
        polled_end = state.get("live_poll") and not (run and run.is_active())  # by the record: the manager hears later
        if not polled_end:
            st.rerun()
        # A polled run has ended: this fragment has no refreshes to stop, so it draws the result itself, at
        # once, instead of asking for a rerun of the whole page first.
        state["live_poll"] = poll
        state["live_active"], points = None, CHART_STEPS
    live_status(key, run, poll)
    live_curves(run, points, poll)


def form_ui() -> None:
    """The form's fields, each problem under its field, the network's size, and the learning-rate finder."""
    try:
        config, slots = config_ui()
    except ValueError as err:  # a widget value of the wrong type, e.g. an empty number
        st.error(f"Invalid value: {ui.escaped(err)}")
        return
    problems = check(config, ui.store().get).problems
    slots.show(problems)
    if not problems:  # sizes by arithmetic (nnapp.arch): the server never builds the model
        st.session_state["train_config"] = config.to_dict()  # the Sweep page can search around it
        with st.expander("Layer summary"):
            st.dataframe(pd.DataFrame(summary(config)), hide_index=True, width="stretch")
    lr_finder_ui(config, disabled=bool(problems))
    continue_ui()


def launch_bar() -> None:
    """Above the long form, so that Launch is a few Tab presses from the top and on screen without scrolling:
    the preset (labelled "fast, edited" once the fields differ from it, with Reset), Launch, Retrain, and
    what Launch would train or why it cannot."""
    state = st.session_state
    try:
        config, problem = form_config(), None
        problems = check(config).problems
    except ValueError as err:  # a value of the wrong type: the open form says which
        config, problems, problem = None, {"form": str(err)}, str(err)
    chosen = state.get("preset")
    edited = chosen in PRESETS and config != PRESETS[chosen]
    label = lambda name: f"{name}, edited" if name == chosen and edited else name  # noqa: E731
    left, reset, launch, right = st.columns([2.2, 1, 1, 2.4], vertical_alignment="bottom")
    left.selectbox(
        "Start from a preset",
        [*PRESETS, CUSTOM],
        key="preset",
        on_change=on_preset,
        persist_state="session",
        format_func=label,
    )  # fmt: skip  (no help icon: it would be one more Tab press before Launch)
    if edited:
        reset.button(f"Reset to {chosen}", key="preset_reset", on_click=on_preset, help=f"put every field back to {chosen}")
    launch.button("Launch", type="primary", disabled=bool(problems), key="launch", on_click=on_launch, width="stretch")
    right.checkbox("Retrain even if this configuration finished before", key="force", persist_state="session")
    if problems:
        fields = ", ".join(problems) if problem is None else "a field"
        st.error(f"Fix {len(problems)} problem{'s' * (len(problems) > 1)} before launching ({fields}): see under the fields.")
    else:
        need = estimate(config)  # by arithmetic (nnapp.engine.limits): the server never builds the model
        st.markdown(
            f"{ui.escaped(default_name(config))}: **{need.parameters:,} parameters** · about {size_text(need.total)} of "
            f"memory to train · {config.steps_per_epoch()} steps per epoch · key `{config.key()}`"
        )
    if error := state.pop("launch_error", None):
        st.error(ui.escaped(error))


def main() -> None:
    st.title("Train", anchor=False)
    ui.jobs().warm()  # a job process gets ready while the form is filled in
    state = st.session_state
    if "layers_version" not in state:
        apply_config(PRESETS[DEFAULT_PRESET])
        state["preset"] = DEFAULT_PRESET
    if wanted := state.pop("train_dataset", None):  # the Data page's "Train on it"
        choose_dataset(wanted)
        state[FORM] = True
        state.pop("watch_run", None)
    elif state.get("continue_run"):  # the Results page's "Continue training"
        state[FORM] = True
    key = state.get("watch_run")
    if key is None and (active := ui.jobs().active()):
        key = state["watch_run"] = active[0]  # after a reload: attach to what is training
    follow_run(key)
    launch_bar()
    # Folded, the form is not drawn at all: a launch (its callback folds it) and each refresh of a run's
    # status cost the browser less, on the CPUs the training needs. It opens folded on a watched run.
    state.setdefault(FORM, key is None)
    form = st.expander("Configure", expanded=True, key=FORM, on_change="rerun")
    with form:
        if form.open:
            form_ui()
        else:
            fold_form()

    watched = live.record(ui.store(), key) if key is not None else None
    queue_ui("train", refresh=not polls(watched), watched=key)  # no timer while the run's progress is polled
    if key is None:
        # The bar, empty, before any launch: the browser loads its code now, not in a training's first second.
        st.progress(0.0, text="Choose a preset or build a network above, then launch it: its progress shows here.")
        live_curves(None, 0)
        return
    launched = state.pop("launch_state", None)
    run = live.record(ui.store(), key)  # as live_view reads it
    first = ui.escaped(run.owner) if run is not None and run.owner and run.owner != ui.who() else None
    if launched == ClaimState.CACHED:
        by = f" by {first}" if first else ""
        st.success(f"Loaded from cache: this configuration was trained before{by}, so nothing was trained again.")
    elif launched == ClaimState.ATTACHED:
        st.info(
            f"This configuration is already training{f' (launched first by {first})' if first else ''}: showing its progress."
        )
    active = ui.jobs().is_active(key) or (run is not None and run.is_active())
    if active:
        state["live_active"] = key
    state["live_poll"] = poll = polls(run)  # a training run: active
    every = STATUS_EVERY if active and not poll else None
    st.fragment(run_every=every)(live_view)(key, LIVE_POINTS if active else CHART_STEPS)


main()
