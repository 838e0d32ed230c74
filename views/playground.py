"""Playground: draw or upload a digit (or anything of a data set of yours), see what the model sees and what
it thinks; teach it your handwriting."""

from __future__ import annotations

import hashlib
import html
import time

import numpy as np
import pandas as pd
import streamlit as st

import ui
from nnapp.charts import runs as charts
from nnapp.data.examples import model_input
from nnapp.engine.metrics import evaluate_on
from nnapp.engine.states import ClaimState
from nnapp.jobs.runs import finetune_config
from nnapp.predict import ood
from nnapp.predict.images import ImageError, load_image, preprocess
from nnapp.predict.inference import for_inference, saliency
from nnapp.store.store import Store
from nnapp.system.errors import StoreError
from panels.activations import activations_ui
from panels.canvas import st_canvas

CANVAS = 280


@st.cache_resource(max_entries=16)
def cached_model(home: str, key: str, sha: str):
    """A stored model, loaded once per weights file (the checksum is part of the cache key)."""
    return for_inference(Store(home).load_model(key)[0])


def model_for(run):
    return cached_model(str(ui.store().home), run.key, run.weights_sha256)


def drawing_ui(what: str = "digit") -> np.ndarray | None:
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
            st.rerun(scope="fragment")
        image = result.image_data if result is not None else None
    with upload_tab:
        upload = st.file_uploader(f"A PNG or JPEG of one {what}", type=["png", "jpg", "jpeg"], key="upload")
        if upload is not None:
            decoded, problem = decode_upload(upload_digest(upload), upload.getvalue())
            if problem:
                st.error(problem)
            return decoded
    return image


def upload_digest(upload) -> str:
    """The upload's SHA-256, worked out once per uploaded file rather than on every rerun."""
    digests = st.session_state.setdefault("upload_digests", {})
    if upload.file_id not in digests:
        digests.clear()  # only the latest upload is kept
        digests[upload.file_id] = hashlib.sha256(upload.getvalue()).hexdigest()
    return digests[upload.file_id]


@st.cache_data(max_entries=16, show_spinner=False)
def decode_upload(digest: str, _data: bytes) -> tuple[np.ndarray | None, str | None]:
    """An upload decoded once per content (the digest is the cache key), its failure included: (RGBA, None) or (None, why)."""
    try:
        return load_image(_data), None
    except ImageError as err:
        return None, str(err)


def stages_ui(stages) -> None:
    cols = st.columns(4)
    for col, (title, img) in zip(
        cols,
        [("ink", stages.ink), ("cropped", stages.cropped), ("20×20 box", stages.boxed), ("28×28, centred", stages.digit)],
        strict=True,
    ):
        col.image(img, caption=title, width=90, clamp=True)


def check_of(run) -> dict | None:
    """The run's not-a-digit statistics, or None while it has none."""
    check = ui.not_digit_check(run)
    return check if isinstance(check, dict) else None


def prediction_ui(run, digit: np.ndarray) -> np.ndarray:
    model, check = model_for(run), ui.not_digit_check(run)
    start = time.perf_counter()
    verdict = ood.judge(model, digit, check if isinstance(check, dict) else None)
    model_ms = (time.perf_counter() - start) * 1000
    probs, names, best = verdict.probabilities, ui.class_names(run.config.dataset), verdict.digit
    left, right = st.columns([1, 2])
    answer, size = (names[best], answer_size(names[best])) if verdict.is_digit else ("not a digit?", "2.6rem")
    left.markdown(
        f"<div style='font-size:{size};line-height:1;text-align:center;overflow-wrap:anywhere' "
        f"data-testid='predicted-digit'>{html.escape(answer)}</div>",
        unsafe_allow_html=True,
    )
    guess = "" if verdict.is_digit else f"best guess <b>{html.escape(names[best])}</b>, "
    left.markdown(f"<p style='text-align:center'>{guess}probability <b>{probs[best]:.1%}</b></p>", unsafe_allow_html=True)
    not_digit_caption(left, verdict, check)
    right.plotly_chart(charts.probabilities(probs.tolist(), names), key="probs")
    st.session_state["model_ms"] = model_ms
    return probs


def answer_size(answer: str) -> str:
    """A one-character answer (a digit) large; a class name smaller, as long as it is."""
    return "6rem" if len(answer) <= 2 else "3rem" if len(answer) <= 10 else "1.8rem"


def not_digit_caption(col, verdict: ood.Verdict, check) -> None:
    """The not-a-digit score against its threshold, or why there is none yet."""
    if isinstance(check, str):
        col.caption(check)
    elif verdict.score is not None:
        col.caption(
            f"not-a-digit score **{verdict.score:.1f}** (above {verdict.threshold:.1f}: not a digit)",
            help="A small head on this network's activations, trained on digits and on drawings that are not digits; "
            "its threshold flags 0.5% of the run's validation digits.",
        )


def compare_ui(runs, digit: np.ndarray, current) -> None:
    spec = current.config.data_spec()
    same = lambda r: r.config.data_spec().classes == spec.classes and r.config.data_spec().input_shape == spec.input_shape  # noqa: E731
    others = [r for r in runs if r.key != current.key and same(r)]
    if not others:
        return
    with st.expander("Compare models of the same classes on this drawing"):
        by_key = {r.key: r for r in others}
        picked = st.multiselect(
            "Other runs", list(by_key), format_func=lambda k: by_key[k].label(), key="compare_models", max_selections=6
        )
        if not picked:
            return
        cols = st.columns(len(picked) + 1)
        for col, run in zip(cols, [current, *[by_key[k] for k in picked]], strict=True):
            try:
                verdict = ood.judge(model_for(run), digit, check_of(run))
            except StoreError as err:
                col.error(str(err))
                continue
            probs, names = verdict.probabilities, ui.class_names(run.config.dataset)
            answer = names[verdict.digit] if verdict.is_digit else "not a digit?"
            col.metric(run.key[:8], answer, f"{names[verdict.digit]}: {probs.max():.0%}", delta_color="off")
            col.caption(
                ui.escaped(run.config.describe()) + ("" if verdict.score is None else f" · not-a-digit score {verdict.score:.1f}")
            )
            col.plotly_chart(charts.probabilities(probs.tolist(), names), key=f"probs_{run.key}")


def save_ui(digit: np.ndarray, predicted: int) -> None:
    c1, c2 = st.columns([1, 3])
    label = c1.selectbox("True label of this drawing", list(range(10)), index=predicted, key="true_label")
    if c2.button("Save drawing to my set", key="save_drawing", icon=":material/save:"):
        ui.store().add_drawing(np.round(digit * 255).astype(np.uint8), label)
        st.toast(f"Saved a {label}.")
        st.rerun()  # the whole page: the set below has changed


@st.cache_data(max_entries=32, show_spinner=False)
def personal_evaluation(home: str, key: str, sha: str, images: np.ndarray, labels: np.ndarray) -> dict:
    """A model's score on the personal set, worked out once per model and set."""
    return evaluate_on(cached_model(home, key, sha), Store(home).get(key).config, images, labels)


def personal_ui(run) -> None:
    store, jobs = ui.store(), ui.jobs()
    st.header("Your handwriting")
    st.caption(
        "Save drawings with their true label, see how a model reads them, and fine-tune a model on MNIST plus your drawings."
    )
    images, labels, ids = store.drawings()
    if not len(labels):
        st.info("Your set is empty: draw a digit, pick its true label and save it.")
        return
    st.markdown(f"**{len(labels)} drawings** · per digit: " + ", ".join(f"{d}: {int((labels == d).sum())}" for d in range(10)))
    flagged = personal_flags(run, images)
    shown = range(max(0, len(labels) - 40), len(labels))
    st.image([images[i] for i in shown], caption=[f"{labels[i]}{' ?' if flagged[i] else ''}" for i in shown], width=42)
    if flagged.any():
        st.caption(f"{run.key[:8]} reads {int(flagged.sum())} of your drawings as not a digit (marked ?).")
    if st.button("Delete the last saved drawing", key="delete_drawing"):
        store.delete_drawing(ids[-1])
        st.rerun()

    result = personal_evaluation(str(store.home), run.key, run.weights_sha256, images, labels)
    st.metric(f"Accuracy of {run.key[:8]} on your set", f"{result['accuracy']:.1%}")
    with st.expander("Confusion matrix on your set"):
        st.plotly_chart(charts.confusion(result["confusion"], ui.class_names(run.config.dataset)), key="personal_cm")

    child_config = finetune_config(run.config, run.key, images, labels)
    child = store.get(child_config.key())
    if st.button(f"Fine-tune {run.key[:8]} on MNIST + your {len(labels)} drawings", key="finetune", icon=":material/tune:"):
        submission = jobs.submit(child_config)
        st.toast("Fine-tuning queued." if submission.state == ClaimState.QUEUED else f"Fine-tune: {submission.state}.")
        child = store.get(child_config.key())
    if child is not None:
        finetune_status(run, child, images, labels, before=result)


def personal_flags(run, images: np.ndarray) -> np.ndarray:
    """Which saved drawings the run's not-a-digit check flags (none while it has no check)."""
    check = check_of(run)
    if check is None:
        return np.zeros(len(images), bool)
    return ood.score_numpy(ood.features(model_for(run), images), check) > check["threshold"]


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
        after = personal_evaluation(str(ui.store().home), child.key, child.weights_sha256, images, labels)
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
    runs = [r for r in store.runs() if r.has_weights()]
    if not runs:
        st.info("There is no finished model yet. Train one first: the default model takes under a minute on a CPU.")
        ui.page_link("train")
        return
    mnist = [r for r in runs if r.config.dataset == "mnist"]
    best = max(mnist or runs, key=lambda r: r.accuracy or 0)
    run = ui.pick_linked_run(
        runs, "playground_pick", "playground_run", best.key, "Model", missing="Run {} is not a finished model to try here."
    )
    try:
        model_for(run)
    except StoreError as err:
        st.error(f"This run cannot be used: {err}")
        return

    drawing_view(run, runs)
    if run.config.dataset == "mnist":  # the personal set holds digits
        personal_ui(run)


@st.fragment
def drawing_view(run, runs) -> None:
    """Everything that depends on the drawing. A fragment: a stroke reruns this alone, not the model list,
    the personal set or its evaluation below."""
    spec = run.config.data_spec()
    digits = spec.classes == tuple("0123456789")
    left, right = st.columns([1, 1.4])
    with left:
        image = drawing_ui("digit" if digits else "image")
    with right:
        start = time.perf_counter()
        stages = preprocess(image) if image is not None and spec.channels == 1 else None
        shown = (
            stages.digit if stages is not None else model_input(image, 3) if image is not None and spec.channels == 3 else None
        )
        prep_ms = (time.perf_counter() - start) * 1000
        if shown is None:
            ask_ui(run, digits)
            return
        probs = prediction_ui(run, shown)
        if stages is not None:
            st.caption("What the model sees: the drawing turned into an MNIST-style image")
            stages_ui(stages)
        else:
            st.image(shown, width=96, caption=f"what the model sees: {spec.image_size}×{spec.image_size} colour")
        grey = shown if shown.ndim == 2 else shown.mean(2)
        if st.toggle("Saliency: which pixels drove this prediction", key="show_saliency"):
            st.plotly_chart(charts.saliency(grey, saliency(model_for(run), shown)), key="saliency")
        checked = " and not-a-digit check" if ood.available(run.config) else ""
        total = prep_ms + st.session_state["model_ms"]
        st.caption(
            f"canvas → probabilities: {total:.2f} ms (preprocessing {prep_ms:.2f} ms, model{checked} {st.session_state['model_ms']:.2f} ms)"
        )
    activations_ui(run, shown)
    compare_ui(runs, shown, run)
    if run.config.dataset == "mnist":
        save_ui(shown, int(np.argmax(probs)))


def ask_ui(run, digits: bool) -> None:
    """What to draw, before anything is drawn: a digit, or one of the run's classes by name."""
    if digits:
        st.markdown("### Draw a digit")
        st.caption("Draw one digit, 0–9, on the canvas: the prediction updates when you lift the pen.")
        return
    names = ui.class_names(run.config.dataset)
    listed = ", ".join(ui.escaped(n) for n in names[:12]) + (" …" if len(names) > 12 else "")
    st.markdown("### Draw one of its classes")
    st.caption(f"This model knows {len(names)} classes: {listed}. The prediction updates when you lift the pen.")


main()
