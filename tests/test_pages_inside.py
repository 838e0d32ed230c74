"""AppTest of the inside views: activations on the Playground, filters, histograms, dead units and the
projector on Results, the learning-rate finder on the Train page."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from nnapp.engine.presets import PRESETS
from nnapp.inside.lrfind import lr_find_payload
from nnapp.inside.projector import tsne_key
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from tests.test_pages import app, wait_for


@pytest.fixture
def cnn_run(store, tiny):
    return train_or_load(tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=(6,)), store)


def figure(at, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.key == key)
    return json.loads(chart.proto.spec)


def values(v) -> np.ndarray:
    """A figure's array as plotly serialises it: a list, or typed-array bytes."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(v.get("shape", -1))
    return np.asarray(v)


def chart_keys(at) -> list[str]:
    return [c.key for c in at.get("plotly_chart")]


def activations_page(key: str) -> None:
    import numpy as np

    from nnapp.engine.data import load
    from nnapp.store.store import Store
    from panels.activations import activations_ui

    activations_ui(Store().get(key), load("mnist").test_x[0].numpy().astype(np.float32) / 255)


def test_activations_show_grids_units_and_one_channel_large(cnn_run):
    at = AppTest.from_function(activations_page, args=(cnn_run.key,), default_timeout=60).run()
    assert not at.exception, at.exception
    assert not at.subheader  # the Playground's fold names it
    assert chart_keys(at) == ["act_input", "act_zoom", "act_grid_0", "act_dense_dense 1", "act_dense_output"]
    assert figure(at, "act_grid_0")["layout"]["title"]["text"] == "conv 1: 4 channels, 14×14"
    assert figure(at, "act_dense_dense 1")["layout"]["title"]["text"] == "dense 1: 6 units, after the activation"
    assert figure(at, "act_zoom")["layout"]["title"]["text"] == "conv 1, channel 0 (14×14)"
    at.number_input(key="act_channel").set_value(3).run()
    assert figure(at, "act_zoom")["layout"]["title"]["text"] == "conv 1, channel 3 (14×14)"
    marked = [t for t in figure(at, "act_grid_0")["data"] if t.get("textfont", {}).get("color") == "#ff7f0e"]
    assert [list(values(t["text"])) for t in marked] == [["3"]]  # the grid marks the channel shown large
    markers = figure(at, "act_grid_0")["data"][-1]  # what a click on a map picks: tests/test_gestures.py clicks it
    assert markers["mode"] == "markers" and list(values(markers["customdata"])) == [0, 1, 2, 3]


def test_an_mlp_has_units_but_no_maps(store, tiny):
    run = train_or_load(tiny, store)
    at = AppTest.from_function(activations_page, args=(run.key,), default_timeout=60).run()
    assert not at.exception, at.exception
    assert chart_keys(at) == ["act_dense_dense 1", "act_dense_output"]


def inside(at, view: str):
    at.radio(key="inside_view").set_value(view).run()
    assert not at.exception, at.exception
    return at


def test_results_filters_histograms_and_dead_units(cnn_run, store):
    at = app("results")
    assert at.radio(key="inside_view").value == "Filters"
    assert figure(at, "filters")["layout"]["title"]["text"] == "conv 1: 4 filters, 3×3"
    inside(at, "Weights and gradients")
    assert at.selectbox(key="hist_layer").options == ["conv 1", "dense 1", "output"]
    traces = figure(at, "histogram")["data"]
    assert [t["name"] for t in traces] == ["epoch 0", "epoch 1", "epoch 2", "epoch 3"]
    at.radio(key="hist_kind").set_value("grad").run()
    assert [t["name"] for t in figure(at, "histogram")["data"]] == ["epoch 1", "epoch 2", "epoch 3"]
    at.radio(key="hist_style").set_value("heatmap").run()
    (heat,) = figure(at, "histogram")["data"]
    assert heat["type"] == "heatmap" and list(values(heat["x"])) == [1, 2, 3]
    inside(at, "Dead units")
    table = at.dataframe[-1].value
    assert list(table["layer"]) == ["conv 1", "dense 1"] and list(table["units"]) == [4, 6]
    assert next(c.value for c in at.caption if c.value.startswith("A unit is dead")).count("validation digits") == 1


def test_results_say_what_is_missing(store, tiny):
    run = train_or_load(tiny.replace(activation="tanh"), store)
    with store._db() as db:  # as a run trained before histograms were recorded
        db.execute("DELETE FROM histograms WHERE key=?", (run.key,))
    at = inside(app("results"), "Dead units")
    assert any(i.value.startswith("Dead units do not apply to tanh") for i in at.info), [i.value for i in at.info]
    inside(at, "Weights and gradients")
    assert any(i.value.startswith("No histograms for this run") for i in at.info), [i.value for i in at.info]


def test_results_projector_pca_tsne_and_a_picked_digit(cnn_run, store):
    at = inside(app("results"), "Embedding projector")
    traces = figure(at, "projection")["data"]
    assert [t["name"] for t in traces][:10] == [str(d) for d in range(10)]
    assert sum(len(values(t["x"])) for t in traces[:10]) == 10_000 and traces[10]["name"].startswith("misclassified (")
    at.radio(key="proj_method").set_value("t-SNE").run()
    assert at.button(key="tsne_start") and "projection" not in chart_keys(at)
    key = tsne_key(cnn_run)  # a finished t-SNE, as the job leaves it (the job itself: tests/test_inside.py)
    store.tasks.claim("tsne", key, {"run": cnn_run.key})
    coords = np.random.default_rng(0).normal(size=(10_000, 2)).round(3).tolist()
    store.tasks.set(key, status="done", result={"coords": coords, "points": 10_000, "seconds": 1.0})
    at.run()
    zeros = figure(at, "projection")["data"][0]  # the true 0s, at their t-SNE places
    first = int(values(zeros["customdata"])[0])
    assert values(zeros["x"])[0] == pytest.approx(coords[first][0]) and values(zeros["y"])[0] == pytest.approx(coords[first][1])
    # a click on a point shows its digit: tests/test_gestures.py clicks one in Chromium


def test_train_page_finds_a_learning_rate_and_uses_it(home):
    at = app("train")
    at.selectbox(key="preset").select("seed-mlp").run()
    at.number_input(key="cfg_train_subset").set_value(1000).run()
    at.button(key="lr_find").click().run()
    config = PRESETS["seed-mlp"].replace(train_subset=1000)
    key, _ = lr_find_payload(config)
    task = wait_for(lambda: (t := Store().tasks.get(key)) and not t.is_active() and t)
    assert task.is_done() and task.result["suggestion"], task.message
    at.run()
    assert "lr_find_chart" in chart_keys(at)
    rounded = float(f"{task.result['suggestion']:.1e}")
    assert at.button(key="lr_use").label == f"Use {rounded:.1e}"
    at.button(key="lr_use").click().run()
    assert at.number_input(key="cfg_lr").value == rounded
    assert "lr_find_chart" in chart_keys(at)  # the finding stays: the test does not depend on the rate
