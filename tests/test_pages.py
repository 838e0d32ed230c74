"""AppTest: every page renders, and the main interactions behave."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnapp.store import Store
from nnapp.train import train_or_load

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["views/home.py", "views/train.py", "views/results.py", "views/compare.py", "views/playground.py"]


def app(page=None):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
    return at


def texts(at):
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "success", "error", "warning", "subheader", "title", "header")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def charts(at):
    return [e for e in at.get("plotly_chart")]


@pytest.fixture
def stored_run(store, tiny):
    return train_or_load(tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=()), store)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_no_runs(home, page):
    at = app(page)
    assert not at.exception, at.exception


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_run(stored_run, page):
    at = app(page)
    assert not at.exception, at.exception


def test_home_shows_device_counts_and_one_click_path(home):
    at = app()
    assert "CPU" in texts(at) or "CUDA" in texts(at) or "MPS" in texts(at)
    assert "No runs yet" in texts(at)
    assert at.button(key="train_default").label == "Train the default model"


def wait_done(at, key, timeout=120):
    store = Store()
    end = time.time() + timeout
    while time.time() < end:
        run = store.get(key)
        if run and run.status not in ("queued", "running"):
            return run
        time.sleep(0.3)
    raise AssertionError("run did not finish")


def launch_tiny(at):
    at.selectbox(key="preset").select("seed-mlp").run()
    at.number_input(key="cfg_train_subset").set_value(600).run()
    at.number_input(key="cfg_epochs").set_value(2).run()
    at.button(key="launch").click().run()
    return at.session_state["watch_run"]


def test_launch_trains_then_relaunch_loads_from_cache(home):
    at = app("views/train.py")
    key = launch_tiny(at)
    run = wait_done(at, key)
    assert run.status == "done" and run.config.train_subset == 600
    at.run()
    assert f"Run {key[:8]}: done" in texts(at)
    assert "Test accuracy" in texts(at)
    assert charts(at), "no live curves"
    created = run.created
    at.button(key="launch").click().run()
    assert "Loaded from cache" in texts(at)
    assert Store().get(key).created == created  # nothing was queued again


def test_invalid_lr_is_explained_and_disables_launch(home):
    at = app("views/train.py")
    at.number_input(key="cfg_lr").set_value(-1.0).run()
    assert "must be above 0" in texts(at)
    assert at.button(key="launch").disabled
    at.number_input(key="cfg_lr").set_value(1e-3).run()
    assert not at.button(key="launch").disabled


def test_kernel_too_big_for_the_map_is_explained(home):
    at = app("views/train.py")
    at.radio(key="cfg_padding").set_value("valid").run()
    at.number_input(key="cfg_batch_size").set_value(100_000).run()
    assert "larger than the training set" in texts(at)
    assert at.button(key="launch").disabled


def test_results_show_confusion_matrix_gallery_and_downloads(stored_run):
    at = app("views/results.py")
    assert (
        stored_run.key[:8] in at.selectbox(key="results_pick").value or at.selectbox(key="results_pick").value == stored_run.key
    )
    assert "Confusion matrix" in texts(at) and "Misclassified test images" in texts(at)
    assert len(charts(at)) >= 2  # curves and confusion matrix
    assert at.get("image"), "no gallery"
    at.selectbox(key="gallery_true").set_value(3).run()
    assert not at.exception
    assert {b.key for b in at.get("download_button")} >= {"dl_config", "dl_metrics", "dl_weights", "dl_torchscript"}


def test_results_report_corrupted_weights(stored_run, store):
    path = store.weights_path(stored_run.key)
    path.write_bytes(b"garbage")
    at = app("views/results.py")
    assert not at.exception
    assert "corrupted" in texts(at)


def test_compare_lists_runs_and_overlays(store, tiny):
    a = train_or_load(tiny, store)
    b = train_or_load(tiny.replace(seed=1), store)
    at = app("views/compare.py")
    frame = at.dataframe[0].value
    assert set(frame["key"]) == {a.key, b.key}
    at.session_state["compare_pick"] = [a.key, b.key]
    at.run()
    assert not at.exception
    assert len(charts(at)) >= 2  # overlay and hyperparameters


def test_playground_without_runs_explains(home):
    at = app("views/playground.py")
    assert "no finished MNIST model" in texts(at)


def test_playground_with_a_run_shows_selector_and_hint(stored_run):
    at = app("views/playground.py")
    assert at.selectbox(key="playground_pick").value == stored_run.key
    assert "Draw a digit" in texts(at)
    assert "Your set is empty" in texts(at)


def test_playground_shows_before_and_after_a_finetune(stored_run, store):
    from nnapp.data import load
    from nnapp.train import finetune_config

    images = load("mnist").test_x[:6].numpy()
    labels = load("mnist").test_y[:6].numpy()
    for image, label in zip(images, labels, strict=True):
        store.add_drawing(image, int(label))
    drawn, drawn_labels, _ = store.drawings()
    child = train_or_load(finetune_config(stored_run.config, stored_run.key, drawn, drawn_labels), store)
    at = app("views/playground.py")
    at.selectbox(key="playground_pick").set_value(stored_run.key).run()
    assert not at.exception, at.exception
    assert "6 drawings" in texts(at)
    assert "Before and after fine-tuning" in texts(at)
    table = at.dataframe[-1].value
    assert list(table["run"]) == [stored_run.key[:8], child.key[:8]]
