"""AppTest: every page renders, and the main interactions behave. Assertions read single elements."""

import json
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.jobs.runs import finetune_config, train_or_load
from nnapp.store.store import Store
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


def test_home_shows_device_counts_and_one_click_path(home):
    at = app()
    assert at.caption[0].value.startswith("Device: **") and any(d in at.caption[0].value for d in ("CPU", "CUDA", "MPS"))
    assert at.info[0].value.startswith("No runs yet")
    assert [m.value for m in at.metric] == ["0"] * len(at.metric)
    assert at.button(key="train_default").label == "Train the default model"


def test_home_counts_runs_by_status(stored_run):
    at = app()
    done = next(m for m in at.metric if m.label.endswith("done"))
    assert done.value == "1"
    assert at.button(key=f"open_{stored_run.key}")


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
    assert at.subheader[-1].value.endswith(f"Run {key[:8]}: done")
    assert at.success[0].value.startswith(f"Test accuracy **{run.accuracy * 100:.2f}%**")
    steps = len(Store().steps(key))
    (bar,) = at.get("progress")  # where the run ended
    assert bar.proto.value == 100 and bar.proto.text == f"done at epoch 2/2 · step {steps}/{steps}"
    assert curve_points(at) == [steps, steps, 2, steps, steps, 2]  # per step (raw, smoothed), per epoch
    assert "launch" not in [b.key for b in at.button]  # folded, the form is not drawn
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
    assert at.error[0].value.startswith("cancelled: cancelled at step")


def test_reloading_the_train_page_reattaches_to_the_running_job(home):
    load("mnist")
    first = app("train")
    first.selectbox(key="preset").select("seed-cnn").run()
    first.button(key="launch").click().run()
    key = first.session_state["watch_run"]
    store = Store()
    wait_for(lambda: store.get(key).status == "running")
    reloaded = app("train")  # a new browser session: nothing in its session state
    assert reloaded.subheader[-1].value.endswith(f"Run {key[:8]}: running")
    reloaded.button(key="cancel").click().run()
    assert wait_done(key, timeout=10).status == "cancelled"


def test_invalid_lr_is_explained_and_disables_launch(home):
    at = app("train")
    at.number_input(key="cfg_lr").set_value(-1.0).run()
    assert at.error[0].value == "must be a number above 0 and at most 10"
    assert at.button(key="launch").disabled
    at.number_input(key="cfg_lr").set_value(1e-3).run()
    assert not at.error and not at.button(key="launch").disabled


def test_batch_larger_than_the_training_set_is_explained(home):
    at = app("train")
    at.number_input(key="cfg_batch_size").set_value(100_000).run()
    assert at.error[0].value == "is larger than the training set (54000 images)"
    assert at.button(key="launch").disabled


def test_results_show_metrics_confusion_matrix_gallery_and_downloads(stored_run):
    at = app("results")
    assert at.selectbox(key="results_pick").value == stored_run.key
    assert at.metric[0].value == "✓ done"
    assert at.metric[1].value == f"{stored_run.accuracy * 100:.2f}%"
    assert [s.value for s in at.subheader][:2] == ["Confusion matrix", "Per class"]
    assert at.subheader[2].value.startswith("Misclassified test images (")
    assert [c.key for c in at.get("plotly_chart")] == [
        "results_curves",
        "confusion",
        "filters",
    ]  # filters: the inside view's default
    assert image_captions(at)
    assert {b.key for b in at.get("download_button")} >= {"dl_config", "dl_metrics", "dl_weights", "dl_bundle"}


def test_clicking_a_confusion_cell_filters_the_gallery(stored_run, store):
    pred, _ = store.predictions(stored_run.key)
    labels = load("mnist").test_y.numpy()
    pairs = {(int(t), int(p)) for t, p in zip(labels, pred, strict=True) if t != p}
    true, predicted = max(pairs, key=lambda tp: ((labels == tp[0]) & (pred == tp[1])).sum())
    at = app("results")
    at.session_state["confusion"] = {"selection": {"points": [{"x": str(predicted), "y": str(true)}], "point_indices": []}}
    at.run()
    assert at.selectbox(key="gallery_true").value == true and at.selectbox(key="gallery_pred").value == predicted
    captions = image_captions(at)
    count = int(((labels == true) & (pred == predicted)).sum())
    assert len(captions) == min(count, 60)
    assert all(f": {true} → {predicted} (" in c for c in captions)


def test_results_report_corrupted_weights(stored_run, store):
    store.weights_path(stored_run.key).write_bytes(b"garbage")
    at = app("results")
    assert at.error[0].value.startswith("Weights unavailable:") and "corrupted" in at.error[0].value


def test_compare_lists_runs_and_overlays(store, tiny):
    a = train_or_load(tiny, store)
    b = train_or_load(tiny.replace(seed=1), store)
    at = app("compare")
    assert set(at.dataframe[0].value["key"]) == {a.key, b.key}
    assert len(at.get("plotly_chart")) == 1  # hyperparameters only, until rows are ticked
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    assert len(at.get("plotly_chart")) == 2  # the overlay too


def test_delete_on_compare_removes_runs_and_their_weights(store, tiny):
    a = train_or_load(tiny, store)
    b = train_or_load(tiny.replace(seed=1), store)
    at = app("compare")
    row = list(at.dataframe[0].value["key"]).index(a.key)
    at.session_state["runs_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert at.button(key="delete").disabled
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert not at.exception
    assert store.get(a.key) is None and not store.weights_path(a.key).exists()
    assert store.get(b.key) is not None and store.weights_path(b.key).exists()
    assert list(at.dataframe[0].value["key"]) == [b.key]


def test_playground_without_runs_explains(home):
    at = app("playground")
    assert at.info[0].value.startswith("There is no finished model yet")


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
    assert at.error[0].value == "lr=1e-4:100:log: lr=100: must be a number above 0 and at most 10"
    at.text_input(key="sweep_range_lr").input("1e-4:1e-1:log").run()
    assert not at.error and not at.button(key="sweep_start").disabled


def test_a_refresh_near_the_end_of_a_run_waits_for_it_and_shows_how_it_ended(store, tiny):
    """A status refresh that finds a run in its last steps waits for the end, so the page shows the result
    as soon as it is stored rather than at the next refresh."""
    key = store.claim(tiny).key
    store.set_status(key, "running", progress=None)  # "trained" by this process, which is alive
    at = app("train")
    at.session_state["watch_run"] = key
    store.set_progress(key, {"step": 40, "total_steps": 50, "epoch": 1, "epochs": 1, "eta": 30.0, "phase": "training"})
    at.run()
    assert at.subheader[-1].value.endswith(f"Run {key[:8]}: running")  # far from its end: no wait
    assert at.button(key="cancel")
    store.set_progress(key, {"step": 50, "total_steps": 50, "epoch": 1, "epochs": 1, "eta": 0.0, "phase": "testing"})
    threading.Timer(1.0, store.set_status, (key, "failed"), {"message": "ended meanwhile"}).start()
    start = time.monotonic()
    at.run()
    assert 0.9 < time.monotonic() - start < 30
    assert at.subheader[-1].value.endswith(f"Run {key[:8]}: failed")
    assert at.error[0].value == "failed: ended meanwhile"


def test_a_launch_the_store_refuses_is_one_sentence_under_the_open_form(home):
    at = app("train")
    at.selectbox(key="preset").select("seed-mlp").run()
    (home / "runs.sqlite").write_bytes(b"this is not a database" * 100)  # damaged after the page was drawn
    at.button(key="launch").click().run()
    assert not at.exception, at.exception
    assert at.expander[0].proto.expanded  # the form stays open to fix what was refused
    assert "runs.sqlite" in at.error[0].value and "\n" not in at.error[0].value
    assert "watch_run" not in at.session_state
