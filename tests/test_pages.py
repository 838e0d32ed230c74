"""AppTest: every page renders, and the main interactions behave. Assertions read single elements."""

import json
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.names import default_name
from nnapp.engine.presets import PRESETS
from nnapp.jobs.runs import finetune_config, train_or_load
from nnapp.store.store import Store
from tests.conftest import plain
from ui import PAGES

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# Long enough to cancel mid-run: the full training set, a CNN, several epochs.
LONG = RunConfig(conv=((16, 3, 2),), hidden=(), epochs=5, batch_size=64)


def app(page=None):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(PAGES[page].path).run()
        assert not at.exception, at.exception
    return at


def wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def image_captions(at) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


@pytest.fixture
def stored_run(store, tiny):
    return train_or_load(tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=()), store)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_no_runs(home, page):
    app(page)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_run(stored_run, page):
    app(page)


def test_home_shows_a_newcomer_one_click_and_no_empty_counts(home):
    at = app()
    assert at.caption[0].value.startswith("Device: **") and any(d in at.caption[0].value for d in ("CPU", "CUDA", "MPS"))
    assert at.info[0].value.startswith("New here? One click trains")
    assert not at.metric  # no tiles of zeros for a newcomer
    assert at.button(key="train_first").label == "Train my first model"
    at.button(key="train_first").click().run()
    key = PRESETS["fast"].key()
    assert at.session_state["watch_run"] == key and at.title[0].value == "Train"  # the fast preset, shown training
    assert at.selectbox(key="preset").value == "fast"  # and the form holds it
    at.button(key="cancel").click().run()  # (the first-contact walk in Chromium trains it: tests/test_gestures.py)
    assert wait_done(key, timeout=30).status == "cancelled"


def test_home_counts_runs_by_status_and_finds_them_by_name(stored_run, store):
    at = app()
    assert [(m.label, m.value) for m in at.metric] == [("✓ done", "1")]  # only the statuses some run has
    assert at.button(key=f"open_{stored_run.key}")
    store.set_labels(stored_run.key, name="baseline", tags="demo")
    at.text_input(key="home_search").input("demo").run()
    assert "1 run found" in [h.value for h in at.subheader] and at.button(key=f"open_{stored_run.key}")
    at.text_input(key="home_search").input("nothing like it").run()
    assert "0 runs found" in [h.value for h in at.subheader] and not [b for b in at.button if b.key.startswith("open_")]


def wait_done(key, timeout=120):
    store = Store()
    return wait_for(lambda: (run := store.get(key)) and not run.is_active() and run, timeout)


def curves_data(at) -> dict:
    """What the Train page's curves component was given to draw."""
    (chart,) = [c for c in at.get("bidi_component") if c.proto.component_name == "nnapp_curves"]
    return json.loads(chart.proto.json)


def curve_points(at) -> list[int]:
    """Points in each line of the Train page's curves: loss raw, smoothed, validation, then accuracy's."""
    data = curves_data(at)
    return [len(data[metric][line]) for metric in ("loss", "acc") for line in ("raw", "smoothed", "val")]


def test_the_train_page_shows_the_curves_axes_before_any_launch(home):
    """The chart's axes are there before a launch, saying what will be drawn."""
    at = app("train")
    assert at.expander[0].label == "Configure" and at.expander[0].proto.expanded
    assert curve_points(at) == [0] * 6
    assert curves_data(at)["note"].startswith("launch a run")
    (bar,) = at.get("progress")  # empty, drawn before a launch so the browser has its code
    assert bar.proto.value == 0 and "launch it" in bar.proto.text
    assert not at.get("plotly_chart")  # no Plotly bundle to load on this page until a run is opened in Results


def launch_tiny(at):
    at.selectbox(key="preset").select("seed-mlp").run()
    at.number_input(key="cfg_train_subset").set_value(600).run()
    at.number_input(key="cfg_epochs").set_value(2).run()
    at.button(key="launch").click().run()
    return at.session_state["watch_run"]


def test_launch_trains_then_relaunch_loads_from_cache(home):
    at = app("train")
    key = launch_tiny(at)
    assert not at.expander[0].proto.expanded  # the form folded in the launch's own rerun: the run shows below
    run = wait_done(key)
    assert run.status == "done" and run.config.train_subset == 600
    at.run()
    assert at.subheader[-1].value.endswith(": done") and at.caption[-1].value.startswith(f"run {key[:8]} · ")
    assert at.success[0].value.startswith(f"Test accuracy **{run.accuracy * 100:.2f}%**")
    steps = len(Store().steps(key))
    (bar,) = at.get("progress")  # where the run ended
    assert bar.proto.value == 100 and bar.proto.text == f"done at epoch 2/2 · step {steps}/{steps}"
    assert curve_points(at) == [steps, steps, 2, steps, steps, 2]  # per step (raw, smoothed), per epoch
    assert "lr_find" not in [b.key for b in at.button] and at.button(key="launch")  # folded form; the launch bar stays
    at.session_state["configure"] = True  # opened: the fields hold what was launched
    at.run()
    assert at.number_input(key="cfg_train_subset").value == 600 and at.selectbox(key="preset").value == "seed-mlp"
    at.button(key="launch").click().run()
    assert at.success[0].value.startswith("Loaded from cache")
    assert Store().get(key).created == run.created  # nothing was queued again


def test_cancel_on_the_train_page_stops_the_run(home):
    load("mnist")
    at = app("train")
    at.selectbox(key="preset").select("seed-cnn").run()
    at.number_input(key="cfg_epochs").set_value(5).run()
    at.button(key="launch").click().run()
    key = at.session_state["watch_run"]
    store = Store()
    wait_for(lambda: (store.get(key).progress or {}).get("step", 0) > 0)
    at.run()
    at.button(key="cancel").click().run()
    run = wait_done(key, timeout=10)
    assert run.status == "cancelled" and "cancelled at step" in run.message
    at.run()
    assert not at.error  # a cancel is a pause, not a failure
    assert at.info[-1].value.startswith(f"This run was cancelled at step {run.progress['step']} of {run.progress['total_steps']}")
    at.button(key="launch_again").click().run()
    assert Store().get(key).is_active()  # trained again from the start
    at.button(key="cancel").click().run()
    assert wait_done(key, timeout=10).status == "cancelled"


def test_reloading_the_train_page_reattaches_to_the_running_job(home):
    load("mnist")
    first = app("train")
    first.selectbox(key="preset").select("seed-cnn").run()
    first.button(key="launch").click().run()
    key = first.session_state["watch_run"]
    store = Store()
    wait_for(lambda: store.get(key).status == "running")
    reloaded = app("train")  # a new browser session: nothing in its session state
    assert reloaded.subheader[-1].value.endswith(": running") and reloaded.caption[-1].value.startswith(f"run {key[:8]}")
    reloaded.button(key="cancel").click().run()
    assert wait_done(key, timeout=10).status == "cancelled"


def test_invalid_lr_is_explained_and_disables_launch(home):
    at = app("train")
    at.number_input(key="cfg_lr").set_value(-1.0).run()
    assert at.error[0].value == "Fix 1 problem before launching (lr): see under the fields."  # by Launch, on top
    assert at.error[1].value == "must be a number above 0 and at most 10"  # under the field
    assert at.button(key="launch").disabled
    at.number_input(key="cfg_lr").set_value(1e-3).run()
    assert not at.error and not at.button(key="launch").disabled


def test_batch_larger_than_the_training_set_is_explained(home):
    at = app("train")
    at.number_input(key="cfg_batch_size").set_value(100_000).run()
    assert plain(at.error[1].value) == "is larger than the training set (54000 images)"
    assert at.button(key="launch").disabled


def test_results_show_metrics_confusion_matrix_gallery_and_downloads(stored_run):
    at = app("results")
    assert at.selectbox(key="results_pick").value == stored_run.key
    assert at.metric[0].value == "✓ done"
    assert at.metric[1].value == f"{stored_run.accuracy * 100:.2f}%"
    assert [s.value for s in at.subheader][:3] == [ui.escaped(default_name(stored_run.config)), "Confusion matrix", "Per class"]
    assert at.subheader[3].value.startswith("Misclassified test images (")
    assert [c.key for c in at.get("plotly_chart")] == [
        "results_curves",
        "confusion",
        "filters",
    ]  # filters: the inside view's default
    assert image_captions(at)
    assert {b.key for b in at.get("download_button")} >= {"dl_config", "dl_metrics", "dl_weights", "dl_bundle"}


def test_results_report_corrupted_weights(stored_run, store):
    store.weights_path(stored_run.key).write_bytes(b"garbage")
    at = app("results")
    assert at.error[0].value.startswith("Weights unavailable:") and "corrupted" in at.error[0].value


def test_compare_lists_runs_by_name_with_the_differing_settings_first(store, tiny):
    a = train_or_load(tiny, store)
    b = train_or_load(tiny.replace(seed=1, lr=0.000552553), store)
    store.set_labels(a.key, name="first", tags="baseline")
    at = app("compare")
    table = at.dataframe[0].value
    assert set(table["key"]) == {a.key, b.key} and set(table["name"]) == {"first", default_name(b.config)}
    assert list(table.columns[:6]) == ["name", "launched by", "status", "test accuracy", "lr", "seed"]  # what differs, first
    assert len(at.get("plotly_chart")) == 1  # settings against accuracy; the overlay once rows are ticked (test_gestures)
    at.text_input(key="compare_search").input("baseline").run()
    assert list(at.dataframe[0].value["key"]) == [a.key]
    # ticking rows, overlaying and deleting them: tests/test_gestures.py, by the gesture in Chromium


def test_playground_without_runs_explains(home):
    at = app("playground")
    assert at.info[0].value.startswith("There is no finished model to draw for yet")


def test_playground_with_a_run_shows_selector_and_hint(stored_run):
    at = app("playground")
    assert at.selectbox(key="playground_pick").value == stored_run.key
    assert at.markdown[0].value == "### Draw a digit"
    assert at.info[0].value.startswith("Your set is empty")


def test_playground_shows_before_and_after_a_finetune(stored_run, store):
    images = load("mnist").test_x[:6].numpy()
    labels = load("mnist").test_y[:6].numpy()
    for image, label in zip(images, labels, strict=True):
        store.add_drawing(image, int(label))
    drawn, drawn_labels, _ = store.drawings()
    child = train_or_load(finetune_config(stored_run.config, stored_run.key, drawn, drawn_labels), store)
    at = app("playground")
    at.selectbox(key="playground_pick").set_value(stored_run.key).run()
    assert not at.exception, at.exception
    assert next(m.value for m in at.markdown if "drawings" in m.value).startswith("**6 drawings**")
    assert at.subheader[-1].value == "Before and after fine-tuning"
    assert list(at.dataframe[-1].value["run"]) == [stored_run.key[:8], child.key[:8]]


def test_results_show_how_often_the_not_a_digit_check_flags(stored_run, store):
    from nnapp.predict import ood

    at = app("results")
    assert "Not a digit" in [s.value for s in at.subheader]  # the check is being made: said so
    stats = ood.ensure(store, stored_run.key)
    at = app("results")
    labels = {m.label: m.value for m in at.metric}
    assert labels["MNIST test digits flagged"] == f"{stats['rates']['test']:.2%}"
    assert labels["Held-out non-digits flagged"] == f"{stats['rates']['heldout']:.1%}"


def start_tiny_sweep(at, values="1e-3,3e-3"):
    """A 2-trial grid sweep of the seed's MLP on 600 digits, two trials at a time, from the Sweep page."""
    at.selectbox(key="sweep_base").select("seed-mlp").run()
    at.number_input(key="sweep_subset_seed-mlp").set_value(600).run()
    at.multiselect(key="sweep_fields").set_value(["lr"]).run()
    at.text_input(key="sweep_range_lr").input(values).run()
    at.radio(key="sweep_sampler").set_value("grid").run()
    at.number_input(key="sweep_trials_n").set_value(2).run()
    at.number_input(key="sweep_parallel").set_value(2).run()
    at.button(key="sweep_start").click().run()
    return at.session_state["sweep_pick"]


def test_a_sweep_started_on_the_page_fills_its_table_and_opens_the_best_trial(home):
    at = app("sweep")
    assert at.info[0].value.startswith("No sweeps yet")
    name = start_tiny_sweep(at)
    assert name.startswith("seed-mlp-lr-")
    store = Store()
    task = wait_for(lambda: (t := store.tasks.get(f"sweep:{name}")) and not t.is_active() and t, timeout=300)
    assert task.status == "done", task.message
    at.run()
    table = at.dataframe[0].value
    assert list(table["status"]) == ["✓ done", "✓ done"] and sorted(table["lr"]) == [1e-3, 3e-3]
    best = table.loc[table["val_acc"].idxmax()]
    assert at.metric[0].label == "Best validation accuracy" and at.metric[0].value == f"{best['val_acc']:.4f}"
    run = store.get(best["key"])
    assert at.metric[1].value == f"{run.accuracy * 100:.2f}%"  # shown for the best trial, never searched on
    assert len(at.get("plotly_chart")) >= 2  # best so far, parallel coordinates (importance: one value, none)
    at.button(key="sweep_best_results").click().run()
    assert at.selectbox(key="results_pick").value == run.key


def test_a_bad_range_on_the_sweep_page_is_explained_and_disables_start(home):
    at = app("sweep")
    at.text_input(key="sweep_range_lr").input("0:1:log").run()
    assert at.error[0].value == "a log scale needs a low end above 0"
    assert at.button(key="sweep_start").disabled
    at.text_input(key="sweep_range_lr").input("1e-4:100:log").run()
    assert plain(at.error[0].value) == "lr=1e-4:100:log: lr=100: must be a number above 0 and at most 10"
    at.text_input(key="sweep_range_lr").input("1e-4:1e-1:log").run()
    assert not at.error and not at.button(key="sweep_start").disabled


def test_a_sweep_that_cannot_run_says_why_and_disables_start(home):
    from nnapp.engine.device import cpu_count

    at = app("sweep")
    at.multiselect(key="sweep_fields").set_value(["lr", "momentum"]).run()  # around the fast preset: AdamW
    says = "momentum=0.8:0.99: momentum changes nothing that trains here: the adamw optimizer takes no momentum"
    assert [plain(e.value) for e in at.error] == [says] and at.button(key="sweep_start").disabled
    at.multiselect(key="sweep_fields").set_value(["lr"]).run()
    at.number_input(key="sweep_parallel").set_value(cpu_count() + 1).run()
    assert plain(at.error[0].value).startswith(f"parallel: at most {cpu_count()} trial") and at.button(key="sweep_start").disabled
    at.number_input(key="sweep_parallel").set_value(1).run()
    at.radio(key="sweep_sampler").set_value("grid").run()
    at.multiselect(key="sweep_fields").set_value(["batch_size", "epochs", "patience"]).run()
    for field, first in (("batch_size", 2), ("epochs", 1), ("patience", 1)):  # (a batch of 1 cannot train batch norm)
        at.text_input(key=f"sweep_range_{field}").input(",".join(str(n) for n in range(first, first + 100))).run()
    assert plain(at.error[0].value).startswith("sampler: the grid holds 1,000,000 configs, more than the 100,000")
    assert at.button(key="sweep_start").disabled
    at.text_input(key="sweep_range_patience").input("0,1").run()
    assert not at.error and not at.button(key="sweep_start").disabled
    assert "The grid holds 20,000 configs; the sweep trains 8 of them, in a shuffled order." in [c.value for c in at.caption]


def test_a_refresh_near_the_end_of_a_run_waits_for_it_and_shows_how_it_ended(store, tiny):
    """A status refresh that finds a run in its last steps waits for the end, so the page shows the result
    as soon as it is stored rather than at the next refresh."""
    key = store.claim(tiny).key
    store.set_status(key, "running", progress=None)  # "trained" by this process, which is alive
    at = app("train")
    at.session_state["watch_run"] = key
    store.set_progress(key, {"step": 40, "total_steps": 50, "epoch": 1, "epochs": 1, "eta": 30.0, "phase": "training"})
    at.run()
    assert at.subheader[-1].value.endswith(": running")  # far from its end: no wait
    assert at.button(key="cancel")
    store.set_progress(key, {"step": 50, "total_steps": 50, "epoch": 1, "epochs": 1, "eta": 0.0, "phase": "testing"})
    threading.Timer(1.0, store.set_status, (key, "failed"), {"message": "ended meanwhile"}).start()
    start = time.monotonic()
    at.run()
    assert 0.9 < time.monotonic() - start < 30
    assert at.subheader[-1].value.endswith(": failed")
    assert at.error[0].value == "failed: ended meanwhile"


def test_a_launch_the_store_refuses_is_one_sentence_under_the_open_form(home):
    at = app("train")
    at.selectbox(key="preset").select("seed-mlp").run()
    (home / "runs.sqlite").write_bytes(b"this is not a database" * 100)  # damaged after the page was drawn
    at.button(key="launch").click().run()
    assert not at.exception, at.exception
    assert at.expander[0].proto.expanded  # the form stays open to fix what was refused
    assert "runs.sqlite" in plain(at.error[0].value) and "\n" not in at.error[0].value
    assert "watch_run" not in at.session_state


def test_the_train_form_holds_the_run_on_screen_and_says_when_it_is_edited(stored_run):
    """Opened from a run ("Train a variant" on Results), the form holds that run's config, not the default preset;
    the preset's label says it was edited, and Reset puts the preset back."""
    at = app("results")
    at.button(key="to_train").click().run()
    assert at.title[0].value == "Train" and at.session_state["watch_run"] == stored_run.key
    assert at.selectbox(key="preset").value == "seed-cnn"  # the closest preset, labelled as edited
    assert at.selectbox(key="preset").format_func("seed-cnn") == "seed-cnn, edited"
    at.session_state["configure"] = True  # (folded on a watched run; the form opens by its expander in Chromium)
    at.switch_page(PAGES["train"].path).run()  # AppTest reruns the page it was told, not the one switched to
    assert at.number_input(key="cfg_train_subset").value == stored_run.config.train_subset
    assert at.number_input(key="cfg_lr").value == stored_run.config.lr
    at.button(key="preset_reset").click().run()
    assert at.number_input(key="cfg_train_subset").value == PRESETS["seed-cnn"].train_subset
    assert "preset_reset" not in [b.key for b in at.button]


def test_a_run_name_with_a_control_character_is_not_saved_and_says_why(stored_run, store):
    store.set_labels(stored_run.key, name="baseline")
    at = app("results")
    at.text_input(key=f"run_name_{stored_run.key}").input("base\u202eline")
    at.button(key=f"FormSubmitter:labels_{stored_run.key}-Save name, notes and tags").click().run()
    assert not at.exception, at.exception
    assert plain(at.error[0].value).startswith("Not saved: a run's name cannot hold control or invisible formatting")
    assert store.labels(stored_run.key).name == "baseline"
