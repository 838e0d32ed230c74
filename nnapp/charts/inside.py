"""Plotly figures of the network's inside: feature maps and filters as tiles, dense activations as bars,
histograms over epochs, the embedding projector, and the learning-rate finder. Plain data in, figures out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from nnapp.charts.runs import CLASS_COLOURS, TRAIN, VAL
from nnapp.store.histograms import KINDS, on_grid

GAP = 1  # pixels between tiles


def tile_columns(count: int) -> int:
    return min(count, 16)


def tiles(
    maps: np.ndarray, title: str, diverging: bool = False, pixels: int = 44, selected: int | None = None, clickable: bool = False
) -> go.Figure:
    """Maps (C×H×W) side by side in rows, one colour scale for all, each numbered at its top-left corner.

    `diverging` centres a red-blue scale on 0 (weights); otherwise the scale runs from the layer's lowest
    to its highest value (activations). `pixels` is the size of one tile on screen. `clickable`: a heatmap
    gives a click no point to select, so each tile also carries a clear square marker (customdata: its channel).
    """
    count, h, w = maps.shape
    cols = tile_columns(count)
    rows = -(-count // cols)
    z = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP), np.nan, np.float32)
    for c in range(count):
        r, k = divmod(c, cols)
        z[r * (h + GAP) : r * (h + GAP) + h, k * (w + GAP) : k * (w + GAP) + w] = maps[c]
    peak = float(np.nanmax(np.abs(maps))) if maps.size else 1.0
    scale = dict(colorscale="RdBu", zmid=0, zmin=-peak, zmax=peak) if diverging else dict(colorscale="Viridis")
    hover = dict(hoverinfo="skip") if clickable else dict(hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>")
    traces = [go.Heatmap(z=z, showscale=False, **hover, **scale)]
    channel = np.arange(count)
    row, col = np.divmod(channel, cols)
    traces += _tile_numbers(maps, peak, diverging, selected, (row, col))
    tile_px = max(pixels, 24)
    if clickable:
        traces.append(_tile_markers(maps, row, col, tile_px))
    # one constructor call: plotly validates each update_* call over again, which costs more than the data
    layout = dict(
        title=dict(text=title, font=dict(size=14)),
        margin=dict(l=0, r=0, t=30, b=0),
        height=30 + rows * tile_px * (h + GAP) // max(h, 1),
        width=cols * tile_px * (w + GAP) // max(w, 1),
        plot_bgcolor="rgba(0,0,0,0)",  # the gaps between tiles: the page's own background, light or dark
        hoverdistance=tile_px,
        xaxis=dict(visible=False, range=[-0.5, z.shape[1] - 0.5]),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"),
    )
    return go.Figure(data=traces, layout=layout)


def _tile_numbers(maps: np.ndarray, peak: float, diverging: bool, selected: int | None, where) -> list[go.Scatter]:
    """Each map's number at its corner: dark on a light corner, white on a dark one, orange when selected. One
    text trace per colour: a list of colours would be validated one by one (slow on every stroke)."""
    count, h, w = maps.shape
    row, col = where
    channel = np.arange(count)
    corner = maps[:, 0, 0]
    if diverging:
        light = np.abs(corner) / max(peak, 1e-12) < 0.5
    else:
        light = (corner - np.nanmin(maps)) / max(float(np.nanmax(maps) - np.nanmin(maps)), 1e-12) > 0.6
    traces = []
    for colour, which in (
        ("black", light & (channel != selected)),
        ("white", ~light & (channel != selected)),
        (VAL, channel == selected),
    ):
        if which.any():
            traces.append(
                go.Scatter(
                    x=col[which] * (w + GAP) - 0.3,
                    y=row[which] * (h + GAP) - 0.3,
                    text=channel[which].astype(str),
                    mode="text",
                    textposition="bottom right",
                    textfont=dict(size=10, color=colour),
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    return traces


def _tile_markers(maps: np.ndarray, row: np.ndarray, col: np.ndarray, tile_px: int) -> go.Scatter:
    """A clear square over each tile, which a click selects: customdata is the tile's channel."""
    count, h, w = maps.shape
    return go.Scatter(
        x=col * (w + GAP) + (w - 1) / 2,
        y=row * (h + GAP) + (h - 1) / 2,
        customdata=list(range(count)),  # a list: a click reports typed arrays as they were sent
        text=[f"{v:.3f}" for v in maps.reshape(count, -1).max(1)],
        mode="markers",
        marker=dict(symbol="square", size=tile_px * 0.9, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=0)),
        hovertemplate="channel %{customdata}: strongest %{text}<extra>click to see it large</extra>",
        showlegend=False,
    )


def image(z: np.ndarray, title: str, colorscale: str = "gray", size: int = 260) -> go.Figure:
    """One map large, with a hover value per pixel."""
    heat = go.Heatmap(z=z, colorscale=colorscale, showscale=False, hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>")
    layout = dict(
        title=dict(text=title, font=dict(size=14)),
        margin=dict(l=0, r=0, t=30, b=0),
        height=size + 30,
        width=size,
        xaxis=dict(visible=False),
        yaxis=dict(autorange="reversed", scaleanchor="x", visible=False),
    )
    return go.Figure(data=[heat], layout=layout)


def units(values: np.ndarray, title: str, top: int = 5, labels: list[str] | None = None) -> go.Figure:
    """A dense layer's activations as bars, its `top` strongest units in another colour and numbered."""
    values = np.asarray(values, dtype=float)
    best = np.sort(np.argsort(-values)[:top])
    rest = np.setdiff1d(np.arange(len(values)), best)
    names = np.asarray(labels if labels is not None else [str(i) for i in range(len(values))])
    hover = "unit %{x}: %{y:.3f}<extra></extra>" if labels is None else "class %{text}: %{y:.3f}<extra></extra>"
    bars = [
        go.Bar(x=rest, y=values[rest], width=0.8, marker_color=TRAIN, text=names[rest], textposition="none", hovertemplate=hover),
        go.Bar(
            x=best,
            width=0.8,  # one unit wide, as the others: Plotly would size a few bars by their own spacing
            y=values[best],
            marker_color=VAL,
            text=names[best],
            textposition="outside",
            textfont=dict(size=11),
            hovertemplate=hover,
        ),
    ]
    xaxis = (
        dict(title_text="unit") if labels is None else dict(title_text="class", tickvals=np.arange(len(names)), ticktext=names)
    )
    layout = dict(
        title=dict(text=title, font=dict(size=14)),
        margin=dict(l=10, r=10, t=30, b=10),
        height=240,
        bargap=0.1,
        barmode="overlay",
        showlegend=False,
        uniformtext=dict(minsize=10, mode="show"),  # numbers above narrow bars stay readable
        xaxis=xaxis,
        yaxis=dict(title_text="activation" if labels is None else "logit"),
    )
    return go.Figure(data=bars, layout=layout)


def histogram_curves(rows: list[dict], title: str) -> go.Figure:
    """TensorBoard's overlay view: one curve per epoch, later epochs darker, all on one set of bins (fewer
    for a layer of few values, so that a curve shows a shape rather than noise)."""
    bins = int(np.clip(np.sqrt(sum(rows[0]["counts"])), 8, 30))
    edges, grid = on_grid(rows, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    last = max(r["epoch"] for r in rows) or 1
    for r, counts in zip(rows, grid, strict=True):
        colour = sample_colorscale("Blues", [0.3 + 0.7 * r["epoch"] / last])[0]
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=counts,
                mode="lines",
                line=dict(color=colour, width=2, shape="spline"),
                name=f"epoch {r['epoch']}",
                hovertemplate=f"epoch {r['epoch']}: " + "%{y:.0f} at %{x:.3g}<extra></extra>",
            )
        )
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        xaxis_title="value",
        yaxis_title="count",
        height=330,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def histogram_heatmap(rows: list[dict], title: str) -> go.Figure:
    """Epoch × value: each epoch's histogram as a column on one shared value axis, share of the layer per bin."""
    edges, grid = on_grid(rows)
    shares = grid / np.maximum(grid.sum(1, keepdims=True), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Heatmap(
            x=[r["epoch"] for r in rows],
            y=centres,
            z=shares.T,
            colorscale="Blues",
            colorbar=dict(title="share", tickformat=".0%"),
            hovertemplate="epoch %{x}, value %{y:.3g}: %{z:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="epoch (0: before training)", dtick=1)
    fig.update_yaxes(title_text="value")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=330, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def histogram_title(layer: str, kind: str) -> str:
    return f"{layer}: {KINDS[kind]}"


def projection(
    coords: np.ndarray, labels: np.ndarray, preds: np.ndarray, names: list[str], extra: dict | None = None
) -> go.Figure:
    """A 2-D map of digits coloured by true class, misclassified ones ringed; `extra` adds other points
    ({"coords", "labels"}: the user's drawings) as stars. Each point's customdata is its index."""
    fig = go.Figure()
    for c, name in enumerate(names):
        idx = np.flatnonzero(labels == c)
        fig.add_trace(
            go.Scattergl(
                x=coords[idx, 0],
                y=coords[idx, 1],
                mode="markers",
                name=name,
                customdata=idx.tolist(),  # a list: a click reports typed arrays as they were sent
                marker=dict(size=4, color=CLASS_COLOURS[c % 10], opacity=0.7),
                hovertemplate=f"#%{{customdata}}: true {name}<extra></extra>",
            )
        )
    wrong = np.flatnonzero(labels != preds)
    fig.add_trace(
        go.Scattergl(
            x=coords[wrong, 0],
            y=coords[wrong, 1],
            mode="markers",
            name=f"misclassified ({len(wrong)})",
            customdata=wrong.tolist(),
            marker=dict(size=8, color="rgba(0,0,0,0)", line=dict(color="black", width=1.2)),
            text=[f"true {names[labels[i]]}, predicted {names[preds[i]]}" for i in wrong],
            hovertemplate="#%{customdata}: %{text}<extra></extra>",
        )
    )
    if extra is not None and len(extra["coords"]):
        fig.add_trace(
            go.Scatter(
                x=extra["coords"][:, 0],
                y=extra["coords"][:, 1],
                mode="markers+text",
                name="your drawings",
                text=[names[v] for v in extra["labels"]],
                textposition="top center",
                marker=dict(size=14, symbol="star", color="gold", line=dict(color="black", width=1)),
                hovertemplate="your drawing of %{text}<extra></extra>",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    legend = dict(itemsizing="constant", y=0.92)  # below the chart's toolbar
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10), legend=legend, dragmode="pan")
    return fig


def lr_finder(result: dict, current: float | None = None) -> go.Figure:
    """Loss against learning rate on a log axis: each step faint, the smoothed loss, the suggestion marked."""
    lrs = result["lrs"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=lrs, y=result["losses"], mode="lines", line=dict(color=TRAIN, width=1), opacity=0.3, name="loss per step")
    )
    fig.add_trace(go.Scatter(x=lrs, y=result["smoothed"], mode="lines", line=dict(color=TRAIN, width=2.5), name="smoothed loss"))
    if result.get("suggestion"):
        s = result["suggestion"]
        y = float(np.interp(np.log10(s), np.log10(lrs), result["smoothed"]))
        fig.add_trace(
            go.Scatter(
                x=[s],
                y=[y],
                mode="markers+text",
                marker=dict(color=VAL, size=13, symbol="circle"),
                text=[f"suggested {s:.1e}"],
                textposition="top right",
                name="suggestion (steepest descent)",
            )
        )
    if current:
        fig.add_vline(
            x=current,
            line=dict(color="grey", dash="dot"),
            annotation_text=f"current {current:.1e}",
            annotation_position="bottom left",
        )
    top = min(max(result["smoothed"]), 3 * min(result["smoothed"])) if result["smoothed"] else 1
    fig.update_xaxes(type="log", title_text="learning rate", exponentformat="power")
    fig.update_yaxes(title_text="training loss", range=[0, top * 1.05])
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25))
    return fig
