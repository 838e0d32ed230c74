"""The Results page's view of the network's inside: first-layer filters, weight and gradient histograms
over training, dead units, and the embedding projector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from nnapp.charts import inside as charts_inside
from nnapp.engine.arch import weighted
from nnapp.engine.data import load, split
from nnapp.inside.activations import dead_rule, dead_units
from nnapp.store.histograms import KINDS, layers
from nnapp.system.errors import StoreError
from panels.activations import network
from panels.projector import projector_ui

STYLES = ("curve per epoch", "heatmap")


def inside_ui(run) -> None:
    """One of the views, picked by a radio: only the one shown is computed."""
    st.subheader("Inside the network")
    views = {
        "Filters": filters_ui,
        "Weights and gradients": histograms_ui,
        "Dead units": dead_units_ui,
        "Embedding projector": projector_ui,
    }
    view = st.radio("View", list(views), key="inside_view", horizontal=True, label_visibility="collapsed")
    if view != "Weights and gradients" and not run.has_weights():
        st.info("This view needs the run's weights, and this run has none.")
        return
    try:
        views[view](run)
    except StoreError as err:
        st.warning(f"This view needs the run's weights, which cannot be read: {ui.escaped(err)}")


@st.cache_data(max_entries=8, show_spinner=False)
def first_layer(home: str, key: str, sha: str) -> tuple[str, np.ndarray]:
    """The first weighted layer's name and its units' weights as images: k×k kernels, or 28×28 for an MLP;
    a colour input's channels summed (what a unit adds for a grey pixel)."""
    model, config = network(home, key, sha)
    position, name = weighted(config)[0]
    weight = model[position].weight.detach().float()
    if weight.dim() == 4:
        return name, weight.sum(1).numpy()
    channels, size, _ = config.data_spec().input_shape
    return name, weight.reshape(len(weight), channels, size, size).sum(1).numpy()


def filters_ui(run) -> None:
    name, maps = first_layer(str(ui.store().home), run.key, run.weights_sha256)
    count, h, w = maps.shape
    kind = "filters" if run.config.model == "cnn" else "units' input weights"
    st.plotly_chart(
        charts_inside.tiles(maps, f"{name}: {count} {kind}, {h}×{w}", diverging=True, pixels=48 if h > 9 else 40),
        key="filters",
        alt=f"The {count} {kind} of {name} as {h}×{w} images, red for positive weights and blue for negative ones.",
        config=ui.QUIET,
    )
    st.caption(
        "Each image is one unit's weights on the input pixels: red adds to its activation, blue takes away, "
        "so each shows the pattern that excites it most (one colour scale for all)."
    )


def histograms_ui(run) -> None:
    rows = ui.store().histograms(run.key)
    if not rows:
        origin = ui.store().imported(run.key)
        if origin is not None:  # what is true of an imported run: its bundle did not carry them
            st.info(
                f"No histograms for this run: it was imported from a bundle (format {ui.escaped(origin.get('version', '?'))}) "
                "that did not carry them. Retrain it here (Train page, 'Retrain even if this configuration finished "
                "before') to see how its weights moved."
            )
            return
        st.info(
            "No histograms for this run: it was trained before nnapp recorded them. Retrain it (Train page, "
            "'Retrain even if this configuration finished before') to see how its weights moved."
        )
        return
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Layer", layers(rows), key="hist_layer")
    kind = c2.radio("Of", list(KINDS), format_func=lambda k: KINDS[k], key="hist_kind", horizontal=True)
    style = c3.radio("Drawn as", STYLES, key="hist_style", horizontal=True)
    chosen = [r for r in rows if r["layer"] == layer and r["kind"] == kind]
    if not chosen:
        st.info("No gradients were recorded for this layer: the run ended before its first epoch did.")
        return
    draw = charts_inside.histogram_curves if style == STYLES[0] else charts_inside.histogram_heatmap
    norms = " → ".join(f"{r['norm']:.3g}" for r in chosen)
    alt = f"Histograms of {charts_inside.histogram_title(layer, kind)} per epoch; the layer's norm went {norms}."
    st.plotly_chart(draw(chosen, charts_inside.histogram_title(layer, kind)), key="histogram", alt=alt, config=ui.QUIET)
    if kind == "weight":
        st.caption(f"Recorded before training (epoch 0) and at each epoch's end. Norm of the layer's weights: {norms}.")
    else:
        st.caption(
            "The gradient norm of each unit (a neuron's or a filter's weights) at the last training step of each "
            f"epoch: a handful of units far out on the right dominate the update. Whole-layer gradient norm: {norms}."
        )


@st.cache_data(max_entries=8, show_spinner="Running the validation digits through the network…")
def dead(home: str, key: str, sha: str) -> tuple[list[dict], int]:
    model, config = network(home, key, sha)
    data = split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    return dead_units(model, config, data.val_x), len(data.val_x)


def dead_units_ui(run) -> None:
    activation = run.config.activation
    rule = dead_rule(activation)
    if rule is None:
        st.info(
            f"Dead units do not apply to {activation}: its output is never exactly off, so no unit can be "
            "'never active'. What stops such a unit learning is saturation, which this view does not measure."
        )
        return
    rows, images = dead(str(ui.store().home), run.key, run.weights_sha256)
    table = pd.DataFrame(rows).assign(share=lambda t: t["dead"] / t["units"])
    st.dataframe(table.style.format({"share": "{:.0%}"}), hide_index=True, key="dead_table")
    total = int(table["dead"].sum())
    st.caption(
        f"A unit is dead when it is never active on any of the {images:,} validation digits, active meaning {rule} "
        f"(for a conv channel: anywhere on its map). {total} of {int(table['units'].sum())} units are dead here: they "
        "pass nothing on, and no gradient reaches their weights."
    )
