"""Playground: draw or upload a digit, see what the model sees and what it thinks; teach it your handwriting."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ui
from nnapp import charts
from nnapp.errors import StoreError
from nnapp.metrics import evaluate_on
from nnapp.predict import ImageError, for_inference, load_image, preprocess, probabilities, saliency
from nnapp.runs import finetune_config
from nnapp.store import Store
from panels.activations import activations_ui

CANVAS = 280


@st.cache_resource(max_entries=16)
def cached_model(home: str, key: str, sha: str):
    """A stored model, loaded once per weights file (the checksum is part of the cache key)."""
    return for_inference(Store(home).load_model(key)[0])


def model_for(run):
    return cached_model(str(ui.store().home), run.key, run.weights_sha256)


def drawing_ui() -> np.ndarray | None:
    """The canvas or an upload; returns the raw RGBA image, or None."""
    draw_tab, upload_tab = st.tabs(["Draw", "Upload"])
    with draw_tab:
        brush = st.slider("Brush width", 4, 40, 18, key="brush")
        version = st.session_state.setdefault("canvas_version", 0)
        result = st_canvas(
            stroke_width=brush,
            stroke_color="#000000",
            background_color="#FFFFFF",
            width=CANVAS,
            height=CANVAS,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas_{version}",
        )
        if st.button("Clear", key="clear", icon=":material/ink_eraser:"):
            st.session_state["canvas_version"] = version + 1
            st.rerun()
        image = result.image_data if result is not None else None
    with upload_tab:
        upload = st.file_uploader("A PNG or JPEG of one digit", type=["png", "jpg", "jpeg"], key="upload")
        if upload is not None:
            try:
                return load_image(upload.getvalue())
            except ImageError as err:
                st.error(str(err))
    return image


def stages_ui(stages) -> None:
    cols = st.columns(4)
    for col, (title, img) in zip(
        cols,
        [("ink", stages.ink), ("cropped", stages.cropped), ("20×20 box", stages.boxed), ("28×28, centred", stages.digit)],
        strict=True,
    ):
        col.image(img, caption=title, width=90, clamp=True)


def prediction_ui(run, digit: np.ndarray) -> np.ndarray:
    model = model_for(run)
    start = time.perf_counter()
    probs = probabilities(model, digit)
    model_ms = (time.perf_counter() - start) * 1000
    names = ui.class_names(run.config.dataset)
    best = int(np.argmax(probs))
    left, right = st.columns([1, 2])
    left.markdown(
        f"<div style='font-size:6rem;line-height:1;text-align:center' data-testid='predicted-digit'>{names[best]}</div>",
        unsafe_allow_html=True,
    )
    left.markdown(f"<p style='text-align:center'>probability <b>{probs[best]:.1%}</b></p>", unsafe_allow_html=True)
    right.plotly_chart(charts.probabilities(probs.tolist(), names), key="probs")
    st.session_state["model_ms"] = model_ms
    return probs


def compare_ui(runs, digit: np.ndarray, current) -> None:
    others = [r for r in runs if r.key != current.key]
    if not others:
        return
    with st.expander("Compare models on this drawing"):
        by_key = {r.key: r for r in others}
        picked = st.multiselect(
            "Other runs", list(by_key), format_func=lambda k: by_key[k].label(), key="compare_models", max_selections=6
        )
        if not picked:
            return
        cols = st.columns(len(picked) + 1)
        for col, run in zip(cols, [current, *[by_key[k] for k in picked]], strict=True):
            try:
                probs = probabilities(model_for(run), digit)
            except StoreError as err:
                col.error(str(err))
                continue
            names = ui.class_names(run.config.dataset)
            col.metric(run.key[:8], names[int(np.argmax(probs))], f"{probs.max():.0%}", delta_color="off")
            col.caption(run.config.describe())
            col.plotly_chart(charts.probabilities(probs.tolist(), names), key=f"probs_{run.key}")


def personal_ui(run, digit: np.ndarray | None, predicted: int | None) -> None:
    store, jobs = ui.store(), ui.jobs()
    st.header("Your handwriting")
    st.caption(
        "Save drawings with their true label, see how a model reads them, and fine-tune a model on MNIST plus your drawings."
    )
    if digit is not None:
        c1, c2 = st.columns([1, 3])
        label = c1.selectbox("True label of this drawing", list(range(10)), index=predicted or 0, key="true_label")
        if c2.button("Save drawing to my set", key="save_drawing", icon=":material/save:"):
            store.add_drawing(np.round(digit * 255).astype(np.uint8), label)
            st.toast(f"Saved a {label}.")
    images, labels, ids = store.drawings()
    if not len(labels):
        st.info("Your set is empty: draw a digit, pick its true label and save it.")
        return
    st.markdown(f"**{len(labels)} drawings** · per digit: " + ", ".join(f"{d}: {int((labels == d).sum())}" for d in range(10)))
    st.image(list(images[-40:]), caption=[str(v) for v in labels[-40:]], width=42)
    if st.button("Delete the last saved drawing", key="delete_drawing"):
        store.delete_drawing(ids[-1])
        st.rerun()

    result = evaluate_on(model_for(run), run.config, images, labels)
    st.metric(f"Accuracy of {run.key[:8]} on your set", f"{result['accuracy']:.1%}")
    with st.expander("Confusion matrix on your set"):
        st.plotly_chart(charts.confusion(result["confusion"], ui.class_names(run.config.dataset)), key="personal_cm")

    child_config = finetune_config(run.config, run.key, images, labels)
    child = store.get(child_config.key())
    if st.button(f"Fine-tune {run.key[:8]} on MNIST + your {len(labels)} drawings", key="finetune", icon=":material/tune:"):
        submission = jobs.submit(child_config)
        st.toast("Fine-tuning queued." if submission.state == "queued" else f"Fine-tune: {submission.state}.")
        child = store.get(child_config.key())
    if child is not None:
        finetune_status(run, child, images, labels, before=result)


@st.fragment(run_every=1.0)
def _watch(key: str) -> None:
    run = ui.store().get(key)
    if run is None or not run.is_active():
        st.rerun()
    p = run.progress or {}
    st.progress(p.get("step", 0) / max(p.get("total_steps", 1), 1), text=f"fine-tuning {key[:8]}: {run.status}")


def finetune_status(parent, child, images, labels, before: dict) -> None:
    if child.is_active():
        _watch(child.key)
        return
    if not child.has_weights():
        st.error(f"Fine-tune {child.key[:8]} {child.status}: {child.message or ''}")
        return
    try:
        after = evaluate_on(model_for(child), child.config, images, labels)
    except StoreError as err:
        st.error(str(err))
        return
    st.subheader("Before and after fine-tuning")
    table = pd.DataFrame(
        {
            "run": [parent.key[:8], child.key[:8]],
            "your set": [before["accuracy"], after["accuracy"]],
            "MNIST test": [parent.accuracy, child.accuracy],
        }
    )
    st.dataframe(table.style.format({"your set": "{:.1%}", "MNIST test": "{:.2%}"}), hide_index=True)
    st.caption(
        "Your drawings were part of the fine-tune's training data, so its score on them is optimistic; draw new ones to check it."
    )
    if st.button(f"Use the fine-tuned run {child.key[:8]}", key="use_child"):
        st.session_state["playground_run"] = child.key
        st.rerun()


def main() -> None:
    st.title("Playground")
    store = ui.store()
    runs = [r for r in store.runs() if r.has_weights() and r.config.dataset == "mnist"]
    if not runs:
        st.info("There is no finished MNIST model yet. Train one first: the default model takes under a minute on a CPU.")
        ui.page_link("train")
        return
    best = max(runs, key=lambda r: r.accuracy or 0)
    wanted = st.session_state.pop("playground_run", None)
    if wanted in {r.key for r in runs}:
        st.session_state["playground_pick"] = wanted
    run = ui.pick_run(runs, "playground_pick", label="Model", default=best.key)
    try:
        model_for(run)
    except StoreError as err:
        st.error(f"This run cannot be used: {err}")
        return

    left, right = st.columns([1, 1.4])
    with left:
        image = drawing_ui()
    with right:
        start = time.perf_counter()
        stages = preprocess(image) if image is not None else None
        prep_ms = (time.perf_counter() - start) * 1000
        if stages is None:
            st.markdown("### Draw a digit")
            st.caption("Draw one digit, 0–9, on the canvas: the prediction updates when you lift the pen.")
            digit = predicted = None
        else:
            probs = prediction_ui(run, stages.digit)
            digit, predicted = stages.digit, int(np.argmax(probs))
            st.caption("What the model sees: the drawing turned into an MNIST digit")
            stages_ui(stages)
            with st.expander("Saliency: which pixels drove this prediction", expanded=False):
                st.plotly_chart(charts.saliency(stages.digit, saliency(model_for(run), stages.digit)), key="saliency")
            st.caption(
                f"canvas → probabilities: {prep_ms + st.session_state['model_ms']:.2f} ms (preprocessing {prep_ms:.2f} ms, model {st.session_state['model_ms']:.2f} ms)"
            )
    if digit is not None:
        activations_ui(run, digit)
        compare_ui(runs, digit, run)
    personal_ui(run, digit, predicted)


main()
