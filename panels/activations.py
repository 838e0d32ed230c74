"""The Playground's view of the network's inside: what each layer computes for the drawing."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from nnapp.charts import inside as charts_inside
from nnapp.inside.activations import layer_outputs
from nnapp.store.store import Store

TOP_UNITS = 5


@st.cache_resource(max_entries=16)
def network(home: str, key: str, sha: str):
    """A stored network as torch built it (hooks need its modules), once per weights file; (model, config)."""
    return Store(home).load_model(key)


@st.cache_data(max_entries=64, show_spinner=False)
def outputs(home: str, key: str, sha: str, digit: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(name, kind, output) of every probed layer for one digit: one forward pass, cached per drawing and model."""
    model, config = network(home, key, sha)
    _, found = layer_outputs(model, config, digit)
    return [(probe.name, probe.kind, values) for probe, values in found]


def _clicked_channel(event, shape: tuple[int, ...]) -> int | None:
    """The channel whose tile a click picked (its marker's customdata), or None."""
    points = [p for p in ui.selected_points(event) if p.get("customdata") is not None]
    if not points:
        return None
    channel = int(np.ravel(points[0]["customdata"])[0])
    return channel if 0 <= channel < shape[0] else None


def activations_ui(run, digit: np.ndarray) -> None:
    """Feature maps of every conv block and the activations of every dense layer for `digit` (28×28 in [0, 1],
    or a colour picture H×W×3)."""
    layers = outputs(str(ui.store().home), run.key, run.weights_sha256, np.ascontiguousarray(digit, np.float32))
    conv = [(name, values) for name, kind, values in layers if kind == "conv"]
    dense = [(name, kind, values) for name, kind, values in layers if kind != "conv"]
    st.caption(
        "What each layer computes for this drawing, from one pass through the network. Conv blocks show one map "
        "per channel, after the block's pooling and activation, on one colour scale per layer (yellow: strongest); "
        "dense layers show each unit's activation, the strongest five numbered (of the logits: the predicted class)."
    )
    for i, (name, values) in enumerate(conv):  # a click on a map picks its channel (before the widgets are drawn)
        channel = _clicked_channel(st.session_state.get(f"act_grid_{i}"), values.shape)
        if channel is not None and (name, channel) != st.session_state.get("act_clicked"):
            st.session_state["act_clicked"] = (name, channel)
            st.session_state["act_layer"], st.session_state["act_channel"] = name, channel
    layer, channel = _zoom_ui(digit, dict(conv)) if conv else (None, None)
    for i, (name, values) in enumerate(conv):
        channels, h, w = values.shape
        title = f"{name}: {channels} channels, {h}×{w}"
        figure = charts_inside.tiles(values, title, selected=channel if name == layer else None, pixels=52, clickable=True)
        strongest = int(values.reshape(channels, -1).max(1).argmax())
        alt = f"{channels} feature maps of {name}, {h}×{w} each; channel {strongest} responds most to this drawing."
        st.plotly_chart(figure, key=f"act_grid_{i}", on_select="rerun", selection_mode="points", alt=alt, config=ui.QUIET)
        st.caption(f"Click a map to see it large. The strongest here: channel {strongest}.")
    for name, kind, values in dense:
        labels = ui.class_names(run.config.dataset) if kind == "output" else None
        title = f"{name}: {len(values)} {'logits' if kind == 'output' else 'units, after the activation'}"
        top = 1 if kind == "output" else TOP_UNITS  # of the logits, the predicted class
        strongest = (labels or [str(u) for u in range(len(values))])[int(np.argmax(values))]
        alt = f"{title}: {'class' if labels else 'unit'} {strongest} is the strongest ({float(np.max(values)):.2f})."
        st.plotly_chart(charts_inside.units(values, title, top, labels), key=f"act_dense_{name}", alt=alt, config=ui.QUIET)


def _zoom_ui(digit: np.ndarray, maps: dict[str, np.ndarray]) -> tuple[str, int]:
    """One channel large beside the input; returns the (layer, channel) shown."""
    names = list(maps)
    if st.session_state.get("act_layer") not in names:
        st.session_state["act_layer"] = names[0]
    pick_col, input_col, map_col = st.columns([1, 1, 1])
    layer = pick_col.selectbox("Layer", names, key="act_layer")
    channels = len(maps[layer])
    if st.session_state.get("act_channel", 0) >= channels:
        st.session_state["act_channel"] = 0
    channel = pick_col.number_input(f"Channel (0–{channels - 1})", 0, channels - 1, step=1, key="act_channel")
    fmap = maps[layer][channel]
    pick_col.caption(f"strongest value {fmap.max():.3f} · active (above 0) on {np.mean(fmap > 0):.0%} of the map")
    grey = digit if digit.ndim == 2 else digit.mean(2)  # a colour input shown by its brightness
    side = grey.shape[0]
    input_col.plotly_chart(
        charts_inside.image(grey, f"input, {side}×{side}", size=230),
        key="act_input",
        alt="The drawing as the network sees it.",
        config=ui.QUIET,
    )
    h, w = fmap.shape
    map_col.plotly_chart(
        charts_inside.image(fmap, f"{layer}, channel {channel} ({h}×{w})", "Viridis", size=230),
        key="act_zoom",
        alt=f"Channel {channel} of {layer} for this drawing, large; yellow where it responds most.",
        config=ui.QUIET,
    )
    return layer, int(channel)
