"""Every chart builder returns a figure with the traces the pages expect."""

import numpy as np
import plotly.graph_objects as go

from nnapp.charts import runs as charts

STEPS = [{"step": s, "loss": 2.3 / s, "acc": min(1.0, 0.1 * s)} for s in range(1, 41)]
EPOCHS = [{"epoch": e, "val_loss": 1.0 / e, "val_acc": 0.9 + 0.02 * e, "train_loss": 1.2 / e, "train_acc": 0.85} for e in (1, 2)]


def test_curves_draw_train_steps_and_validation_epochs_side_by_side():
    fig = charts.curves(STEPS, EPOCHS, steps_per_epoch=20)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == ["train (step)", "train (smoothed)", "validation"] * 2
    assert list(fig.data[0].x) == [s / 20 for s in range(1, 41)]  # steps on the epoch axis
    assert list(fig.data[2].y) == [1.0, 0.5] and list(fig.data[5].y) == [e["val_acc"] for e in EPOCHS]
    assert fig.layout.yaxis.type == "log"


def test_smoothing_is_bias_corrected():
    assert charts.smooth([5.0, 5.0, 5.0]) == [5.0, 5.0, 5.0]
    assert charts.smooth([0.0, 10.0], weight=0.5) == [0.0, 10.0 * 0.5 / 0.75]


def test_confusion_is_a_heatmap_with_a_clickable_marker_per_cell():
    m = [[8, 2], [1, 9]]
    fig = charts.confusion(m, ["a", "b"])
    heat, cells = fig.data
    assert heat.type == "heatmap" and np.array(heat.z).tolist() == m and list(heat.text[0]) == ["8", "2"]
    assert cells.type == "scatter" and cells.mode == "markers" and fig.layout.clickmode == "event+select"
    assert [list(c) for c in cells.customdata] == [[0, 0], [0, 1], [1, 0], [1, 1]]  # (true, predicted) per cell
    assert (list(cells.x), list(cells.y)) == (["a", "b", "a", "b"], ["a", "a", "b", "b"])
    shares = charts.confusion(m, ["a", "b"], normalize=True).data[0]
    assert np.allclose(shares.z, [[0.8, 0.2], [0.1, 0.9]]) and list(shares.text[0]) == ["0.80", "0.20"]
    picked = charts.confusion(m, ["a", "b"], picked=(1, 0)).layout.shapes
    assert [(s.x0, s.y0) for s in picked] == [(-0.5, 0.5)]


def test_overlay_has_one_legend_entry_per_run_drawn_per_step():
    steps = [{"step": s, "loss": 1 / s, "acc": 0.5 + s / 40} for s in range(1, 11)]
    full = charts.curve_series(steps, EPOCHS, 5)
    cut = charts.curve_series(steps[:4], [], 5)
    fig = charts.overlay({"run a": {"series": full}, "run b": {"series": cut, "stopped": "cancelled at epoch 0.8"}}, "acc")
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown == ["run a", "run b (cancelled at epoch 0.8)"]
    assert len(fig.data[0].x) == 10 and max(fig.data[2].x) == 0.8  # per step; the stopped one ends where it stopped
    assert fig.layout.yaxis.range is None  # axes from the data
    named = charts.overlay({"<b>mine</b> 100%": {"series": full}}, "loss")
    assert named.data[0].name == "&lt;b&gt;mine&lt;/b&gt; 100%" and "100%%" in named.data[0].hovertemplate  # as text


def test_probabilities_mark_the_best_class():
    fig = charts.probabilities([0.1, 0.7, 0.2], ["0", "1", "2"])
    (bars,) = fig.data
    assert bars.type == "bar" and list(bars.y) == [0.1, 0.7, 0.2]
    assert bars.marker.color[1] != bars.marker.color[0] == bars.marker.color[2]


def test_saliency_is_the_digit_under_the_heat():
    digit, heat = np.zeros((28, 28)), np.ones((28, 28))
    fig = charts.saliency(digit, heat)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"] and fig.data[1].opacity == 0.55


def test_hyperparameters_number_text_columns():
    rows = [{"lr": 1e-3, "optimizer": "adam", "test accuracy": 0.98}, {"lr": 1e-2, "optimizer": "sgd", "test accuracy": 0.97}]
    (par,) = charts.hyperparameters(rows, ["lr", "optimizer"]).data
    dims = {d.label: d for d in par.dimensions}
    assert list(dims["lr"].values) == [1e-3, 1e-2]
    assert list(dims["optimizer"].ticktext) == ["adam", "sgd"] and list(dims["optimizer"].values) == [0, 1]
    assert list(par.line.color) == [0.98, 0.97]
