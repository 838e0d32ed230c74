"""Plotly figure builders for the pages; plain data in, figures out."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nnapp.store.comparable import train_loss

# One colour per class or per run (Plotly's own ten): each reads on a light and on a dark page.
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

TRAIN = "#1f77b4"
VAL = "#ff7f0e"
# The legend below the x axis' title (anchored by its top): on a phone it wraps, and ran over the title.
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="top", y=-0.3), height=330)


def smooth(values: list[float | None], weight: float = 0.9) -> list[float | None]:
    """Exponential moving average with bias correction, as TensorBoard draws it; a missing value stays a gap."""
    out, avg, seen = [], 0.0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        seen += 1
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**seen))
    return out


def curve_series(steps: list[dict], epochs: list[dict], steps_per_epoch: int, label_smoothing: float = 0.0) -> dict:
    """What the loss and accuracy charts draw, as plain data: x in epochs (so per-step and per-epoch points
    line up), train per step (raw and smoothed), validation per epoch, the panels' titles and the
    accuracy axis' range. A value that is not a finite number (a diverged loss, a damaged row) is a gap.

    The train loss is on validation's definition (without label smoothing) wherever the run recorded it,
    and the title says what is shown; train accuracy is what the training batches scored in training mode
    (dropout on, batch statistics)."""
    steps = [s for s in steps if s["step"] is not None]  # a damaged row: left out, not a traceback
    epochs = [e for e in epochs if e["epoch"] is not None]
    losses = [train_loss(s, label_smoothing) for s in steps]
    comparable = all(same for _, same in losses)
    if label_smoothing and comparable:
        loss_definition = "the train loss without label smoothing, as validation's"
    elif label_smoothing:
        loss_definition = f"the train loss with label smoothing {label_smoothing:g}, validation's without"
    else:
        loss_definition = ""  # train and validation losses are alike: nothing to say
    # a mix (some steps with the unsmoothed loss, some without) is drawn as optimised throughout
    loss = [v for v, _ in losses] if comparable else [s["loss"] for s in steps]
    acc = [s["acc"] for s in steps]
    return {
        "titles": ["loss", "accuracy"],  # short: what they mean is in "definitions", shown beside the chart
        "definitions": [loss_definition, "measured on the training batches in training mode (dropout on)"],
        "step_x": [s["step"] / max(steps_per_epoch, 1) for s in steps],
        "epoch_x": [e["epoch"] for e in epochs],
        "loss": {"raw": _finite(loss), "smoothed": _finite(smooth(loss)), "val": _finite([e["val_loss"] for e in epochs])},
        "acc": {"raw": _finite(acc), "smoothed": _finite(smooth(acc)), "val": _finite([e["val_acc"] for e in epochs])},
        "acc_range": _acc_range(steps, epochs),
    }


def _finite(values: list) -> list[float | None]:
    return [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]


def curves(
    steps: list[dict], epochs: list[dict], steps_per_epoch: int, label_smoothing: float = 0.0, joins: list[float] = ()
) -> go.Figure:
    """Loss and accuracy side by side (curve_series): train per step (raw, faint, and smoothed),
    validation per epoch; a dotted line at each epoch in `joins` (where a continued run starts)."""
    series = curve_series(steps, epochs, steps_per_epoch, label_smoothing)
    fig = make_subplots(rows=1, cols=2, subplot_titles=series["titles"])
    x, ex = series["step_x"], series["epoch_x"]
    raw = dict(
        mode="lines", line=dict(color=TRAIN, width=1), opacity=0.35, name="train (step)", legendgroup="raw", hoverinfo="skip"
    )
    smoothed = dict(mode="lines", line=dict(color=TRAIN, width=2), name="train (smoothed)", legendgroup="train")
    val = dict(mode="lines+markers", line=dict(color=VAL, width=2), name="validation", legendgroup="val")
    for col, metric in ((1, "loss"), (2, "acc")):
        ys = series[metric]
        for tx, ty, style in ((x, ys["raw"], raw), (x, ys["smoothed"], smoothed), (ex, ys["val"], val)):
            fig.add_trace(go.Scatter(x=tx, y=ty, showlegend=col == 1, **style), 1, col)
    for x in joins:
        for col in (1, 2):
            fig.add_vline(x=x, line_dash="dot", line_color="#888", row=1, col=col)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(type="log", dtick=1, row=1, col=1)  # ticks at powers of ten only: readable
    fig.update_yaxes(range=series["acc_range"], row=1, col=2)
    fig.update_layout(**LAYOUT)
    return fig


def _acc_range(steps: list[dict], epochs: list[dict]) -> list[float]:
    values = [e["val_acc"] for e in epochs] + smooth([s["acc"] for s in steps])[len(steps) // 5 :]
    low = min((v for v in values if v is not None and math.isfinite(v)), default=0.0)
    return [max(0.0, low - 0.02), 1.0]


def confusion(
    matrix: list[list[int]], labels: list[str], normalize: bool = False, picked: tuple[int, int] | None = None
) -> go.Figure:
    """Confusion matrix: rows are the true class, columns the predicted one, numbers in the cells.

    A heatmap gives a click no point to select, so each cell also carries a clear square marker (customdata:
    true, predicted) that a click selects; `picked` (true, predicted) is outlined."""
    m = np.array(matrix, dtype=float)
    shown = m / np.maximum(m.sum(1, keepdims=True), 1) if normalize else m
    text = [[f"{v:.2f}" if normalize else f"{int(v)}" for v in row] for row in shown]
    # The diagonal dwarfs everything; colour by the off-diagonal scale so the mistakes show.
    off = shown.copy()
    np.fill_diagonal(off, 0)
    zmax = max(off.max(), 1e-9) * 1.2
    n = len(labels)
    true, pred = np.divmod(np.arange(n * n), n)
    heat = go.Heatmap(
        z=shown, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=zmax,
        hoverinfo="skip", showscale=False,
    )  # fmt: skip
    cells = go.Scatter(
        x=[labels[p] for p in pred],
        y=[labels[t] for t in true],
        customdata=np.stack([true, pred], 1).tolist(),  # a list: a click reports typed arrays as they were sent
        text=[text[t][p] for t, p in zip(true, pred, strict=True)],
        mode="markers",
        marker=dict(symbol="square", size=34, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=0)),
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra>click to show them</extra>",
        showlegend=False,
    )
    fig = go.Figure([heat, cells])
    if picked is not None and all(0 <= i < n for i in picked):
        fig.add_shape(
            type="rect", x0=picked[1] - 0.5, x1=picked[1] + 0.5, y0=picked[0] - 0.5, y1=picked[0] + 0.5,
            line=dict(color=VAL, width=3),
        )  # fmt: skip
    fig.update_xaxes(title_text="predicted", type="category", side="top", showgrid=False)
    fig.update_yaxes(title_text="true", type="category", autorange="reversed", showgrid=False)
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10), height=480, clickmode="event+select", dragmode=False)
    return fig


def overlay(runs: dict[str, dict], metric: str = "acc") -> go.Figure:
    """Runs' curves on one chart, as the Train page draws one run's: per run one colour, its smoothed train
    `metric` ("acc" or "loss") per step as a line and its validation per epoch as markers, x in epochs, one
    legend entry per run (its name). `runs`: name -> {"series": curve_series(...), "stopped": text or None};
    a stopped run's line ends where it stopped and its legend entry says so. Axes span the data."""
    fig = go.Figure()
    for i, (name, run) in enumerate(runs.items()):
        series, colour = run["series"], CLASS_COLOURS[i % len(CLASS_COLOURS)]
        label = _text(f"{name} ({run['stopped']})" if run.get("stopped") else name)  # a name is user text
        ys = series[metric]
        fig.add_trace(
            go.Scatter(
                x=series["step_x"], y=ys["smoothed"], mode="lines", name=label, legendgroup=str(i),
                line=dict(color=colour, width=2), hovertemplate=f"{_hover(name)}: %{{y:.3g}} at epoch %{{x:.2f}} (train)<extra></extra>",
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=series["epoch_x"], y=ys["val"], mode="markers", name=f"{label}: validation", legendgroup=str(i),
                showlegend=False, marker=dict(color=colour, size=9, symbol="diamond"),
                hovertemplate=f"{_hover(name)}: %{{y:.3g}} at epoch %{{x}} (validation)<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=metric_title(metric), type="log" if metric == "loss" else "linear")
    if metric == "acc":
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(**{**LAYOUT, "height": 400, "legend": dict(orientation="h", y=-0.25)})
    return fig


def metric_title(metric: str) -> str:
    return {"acc": "accuracy", "loss": "loss"}[metric]


def _text(text: str) -> str:
    """Text Plotly shows as it is: its own HTML-like tags (<b>, <br>, <a>) read as characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _hover(text: str) -> str:
    """A name inside a hover template: Plotly's %{...} and HTML tags read as text."""
    return _text(text).replace("%", "%%")


def probabilities(probs: list[float], labels: list[str]) -> go.Figure:
    best = int(np.argmax(probs))
    colors = [VAL if i == best else TRAIN for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=labels, y=probs, marker_color=colors, text=[f"{p:.0%}" for p in probs], textposition="outside"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.15], tickformat=".0%")
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), height=260)
    return fig


def saliency(image: np.ndarray, heat: np.ndarray) -> go.Figure:
    """The 28×28 input in grey with the saliency map over it."""
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=heat, colorscale="Hot", opacity=0.55, showscale=False, hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=260, width=260)
    return fig


def hyperparameters(rows: list[dict], dims: list[str], color: str = "test accuracy") -> go.Figure:
    """Parallel coordinates of hyperparameters against a metric; text columns become numbered categories."""
    dimensions = []
    for name in [*dims, color]:
        values = [r[name] for r in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dimensions.append(dict(label=name, values=values))
        else:
            cats = sorted({str(v) for v in values})
            dimensions.append(
                dict(label=name, values=[cats.index(str(v)) for v in values], tickvals=list(range(len(cats))), ticktext=cats)
            )
    fig = go.Figure(
        go.Parcoords(line=dict(color=[r[color] for r in rows], colorscale="Viridis", showscale=True), dimensions=dimensions)
    )
    fig.data[0].update(labelangle=-20, labelside="top")  # labels that lean do not run into each other on a phone
    fig.update_layout(margin=dict(l=60, r=60, t=70, b=20), height=400)
    return fig
