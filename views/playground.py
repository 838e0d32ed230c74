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
from panels.canvas import drawing_area


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
        shape = "one digit, 0 to 9" if what == "digit" else "one of the model's classes"
        st.caption(f"Drawing area: draw {shape}, with the mouse, a pen or a finger.")
        version = st.session_state.setdefault("canvas_version", 0)
        result = drawing_area(f"canvas_{version}", st.session_state.get("brush", 18))
        clear, width = st.columns([1, 2], vertical_alignment="bottom")
        clear.button("Clear", key="clear", icon=":material/ink_eraser:", on_click=clear_canvas, args=("canvas_version",))
        width.slider("Brush width", 4, 40, 18, key="brush", help="How thick the pen draws; MNIST's digits have thick strokes.")
        image = result.image_data if result is not None else None
    with upload_tab:
        upload = st.file_uploader(f"A PNG or JPEG of one {what}", type=["png", "jpg", "jpeg"], key="upload")
        if upload is not None:
            decoded, problem = decode_upload(upload_digest(upload), upload.getvalue())
            if problem:
                st.error(problem)
            return decoded
    return image


def clear_canvas(version_key: str) -> None:
    """Clear's callback: a new canvas (a new key) in the run the click starts, not in one more rerun after it."""
    st.session_state[version_key] = st.session_state.get(version_key, 0) + 1


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
        col.image(img, caption=title, width=90, clamp=True, alt=f"your drawing, {title}")


def check_of(run) -> dict | None:
    """The run's not-a-digit statistics, or None while it has none."""
    check = ui.not_digit_check(run)
    return check if isinstance(check, dict) else None


def prediction_ui(run, digit: np.ndarray) -> ood.Verdict:
    model, check = model_for(run), ui.not_digit_check(run)
    start = time.perf_counter()
    verdict = ood.judge(model, digit, check if isinstance(check, dict) else None)
    model_ms = (time.perf_counter() - start) * 1000
    probs, names = verdict.probabilities, ui.class_names(run.config.dataset)
    left, right = st.columns([1, 2])
    answer_ui(left, verdict, names)
    not_digit_details(left, verdict, check)
    chances = ", ".join(f"{names[i]} {probs[i]:.0%}" for i in np.argsort(-probs)[:3])
    with right:  # HTML bars, not a chart: a drawing's answer costs the server little (bench.py --only 19)
        st.html(probability_bars(probs, names, verdict.digit))
    right.caption(ui.escaped(f"How sure it is of each class. Most likely: {chances}."))
    st.session_state["model_ms"] = model_ms
    return verdict


def answer_ui(col, verdict: ood.Verdict, names: list[str]) -> None:
    """The answer in words: the digit it reads, or that the drawing does not look like a digit (with its guess)."""
    best, probs = verdict.digit, verdict.probabilities
    name = html.escape(names[best])  # a class name may be a person's text (a data set of their own)
    if verdict.is_digit:
        answer, size = name, answer_size(names[best])
        below = f"It reads a <b>{name}</b>, {probs[best]:.1%} sure."
    else:
        answer, size = "This doesn't look like a digit", "1.6rem"
        below = f"If it is one, its best guess is <b>{name}</b> ({probs[best]:.1%})."
    col.markdown(
        f"<div style='font-size:{size};line-height:1.1;text-align:center;overflow-wrap:anywhere' data-testid='predicted-digit' role='status'>{answer}</div>",
        unsafe_allow_html=True,
    )
    col.markdown(f"<p style='text-align:center'>{below}</p>", unsafe_allow_html=True)


def probability_bars(probs: np.ndarray, names: list[str], best: int) -> str:
    """The probabilities as labelled bars, the model's answer highlighted. Class names are shown as text."""
    rows = []
    for i, (name, p) in enumerate(zip(names, probs.tolist(), strict=True)):
        colour = "#2563eb" if i == best else "#93c5fd"
        rows.append(
            f"<div style='display:flex;align-items:center;gap:6px;height:20px' role='listitem'>"
            f"<span style='width:4.5em;text-align:right;font-size:0.85rem'>{html.escape(name)}</span>"
            f"<span style='flex:1;background:rgba(128,128,128,0.15);border-radius:3px;height:14px'>"
            f"<span style='display:block;width:{p * 100:.1f}%;background:{colour};height:14px;border-radius:3px'></span></span>"
            f"<span style='width:3.5em;font-size:0.8rem'>{p:.1%}</span></div>"
        )
    return f"<div data-testid='probabilities' role='list' aria-label='How sure the model is of each class'>{''.join(rows)}</div>"


def answer_size(answer: str) -> str:
    """A one-character answer (a digit) large; a class name smaller, as long as it is."""
    return "6rem" if len(answer) <= 2 else "3rem" if len(answer) <= 10 else "1.8rem"


def not_digit_details(col, verdict: ood.Verdict, check) -> None:
    """The not-a-digit score against its threshold, behind a details expander; or why there is no check yet."""
    if isinstance(check, str):
        col.caption(check)
    elif verdict.score is not None:
        with col.expander("Details: the not-a-digit check"):
            st.markdown(
                f"Score **{verdict.score:.2f}**, threshold **{verdict.threshold:.2f}**: above it, a drawing is not read as a digit."
            )
            st.caption(
                "A small head on this network's activations, trained on digits and on drawings that are not digits; its "
                "threshold flags 0.5% of the run's validation digits."
            )


def compare_ui(runs, digit: np.ndarray, current) -> None:
    spec = current.config.data_spec()
    same = lambda r: r.config.data_spec().classes == spec.classes and r.config.data_spec().input_shape == spec.input_shape  # noqa: E731
    others = [r for r in runs if r.key != current.key and same(r)]
    if not others:
        return
    folded = st.expander("Compare models of the same classes on this drawing", key="compare_open", on_change="rerun")
    if not folded.open:  # worked out only while open: a drawing costs the server little otherwise
        return
    with folded:
        by_key, labels = {r.key: r for r in others}, ui.store().all_labels()
        picked = st.multiselect(
            "Other runs",
            list(by_key),
            format_func=lambda k: ui.run_title(by_key[k], labels),
            key="compare_models",
            max_selections=6,
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
            answer = names[verdict.digit] if verdict.is_digit else "not a digit"
            col.metric(
                ui.escaped(ui.run_name(run, labels)), answer, f"{names[verdict.digit]}: {probs.max():.0%}", delta_color="off"
            )
            col.caption(f"run {run.key[:8]}" + ("" if verdict.score is None else f" · not-a-digit score {verdict.score:.2f}"))
            col.plotly_chart(
                charts.probabilities(probs.tolist(), names),
                key=f"probs_{run.key}",
                alt=f"How sure this model is of each class; it reads {answer}, {probs.max():.0%}.",
                config=ui.QUIET,
            )


def save_ui(digit: np.ndarray, verdict: ood.Verdict) -> None:
    """Save the drawing with its true label. A drawing read as no digit gets no label by default: saving it
    needs an explicit choice, never the model's guess in one click."""
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    label = c1.selectbox(
        "True label of this drawing",
        list(range(10)),
        index=verdict.digit if verdict.is_digit else None,
        placeholder="pick the digit you drew",
        key=f"true_label_{hashlib.sha256(digit.tobytes()).hexdigest()[:12]}",  # each drawing starts from its own answer
        help="What you meant to draw: the drawing is saved under this digit.",
    )
    if c2.button("Save drawing to my set", key="save_drawing", icon=":material/save:", disabled=label is None):
        try:
            ui.store().add_drawing(np.round(digit * 255).astype(np.uint8), label, owner=ui.who())
        except StoreError as err:  # a full disk or a read-only store: said here, the drawing and the page kept
            st.error(f"Not saved: {ui.escaped(err)}")
            return
        st.toast(f"Saved a {label}.")
        st.rerun()  # the whole page: the set below has changed
    if label is None:
        c2.caption("It doesn't look like a digit to the model: pick the digit you drew to save it.")


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
    if flash := st.session_state.pop("drawings_flash", None):
        st.success(flash, icon=":material/delete:")
    if not len(labels):
        st.info("Your set is empty: draw a digit, pick its true label and save it.")
        return
    st.markdown(f"**{len(labels)} drawings** · per digit: " + ", ".join(f"{d}: {int((labels == d).sum())}" for d in range(10)))
    flagged = personal_flags(run, images)
    shown = range(max(0, len(labels) - 40), len(labels))
    st.image(
        [images[i] for i in shown],
        caption=[f"{labels[i]}{' ?' if flagged[i] else ''}" for i in shown],
        alt=[f"your drawing of a {labels[i]}{', not read as a digit' if flagged[i] else ''}" for i in shown],
        width=42,
    )
    if flagged.any():
        st.caption(f"This model reads {int(flagged.sum())} of your drawings as not a digit (marked ?).")
    if st.button("Delete the last saved drawing…", key="delete_drawing", icon=":material/delete:"):
        confirm_delete_drawing(ids[-1], int(labels[-1]), images[-1])

    result = personal_evaluation(str(store.home), run.key, run.weights_sha256, images, labels)
    st.metric("This model's accuracy on your set", f"{result['accuracy']:.1%}")
    with st.expander("Confusion matrix on your set"):
        st.plotly_chart(
            charts.confusion(result["confusion"], ui.class_names(run.config.dataset)),
            key="personal_cm",
            alt=f"Confusion matrix of your {len(labels)} drawings: true label in rows, the model's answer in columns.",
            config=ui.QUIET,
        )

    child_config = finetune_config(run.config, run.key, images, labels)
    child = store.get(child_config.key())
    if st.button(f"Fine-tune {run.key[:8]} on MNIST + your {len(labels)} drawings", key="finetune", icon=":material/tune:"):
        submission = jobs.submit(child_config, owner=ui.who())
        st.toast("Fine-tuning queued." if submission.state == ClaimState.QUEUED else f"Fine-tune: {submission.state}.")
        child = store.get(child_config.key())
    if child is not None:
        finetune_status(run, child, images, labels, before=result)


@st.dialog("Delete a drawing?")
def confirm_delete_drawing(drawing_id: int, label: int, image: np.ndarray) -> None:
    st.image(image, width=84, alt=f"your drawing of a {label}")
    st.markdown(f"This removes your last saved drawing, labelled **{label}**, for good.")
    left, right = st.columns(2)
    if left.button("Delete", type="primary", key="delete_drawing_confirm", icon=":material/delete:", width="stretch"):
        ui.store().delete_drawing(drawing_id)
        st.session_state["drawings_flash"] = f"Deleted your drawing of a {label}."
        st.rerun()
    if right.button("Keep it", key="delete_drawing_cancel", width="stretch"):
        st.rerun()


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
        st.error(f"Fine-tune {child.key[:8]} {child.status}: {ui.escaped(child.message or '')}")
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
    st.title("Playground", anchor=False)
    store = ui.store()
    runs = [r for r in store.runs() if r.has_weights()]
    if not runs:
        st.info("There is no finished model to draw for yet. Home trains a first one in one click, in seconds on a CPU.")
        ui.page_link("home")
        return
    mnist = [r for r in runs if r.config.dataset == "mnist"]
    best = max(mnist or runs, key=lambda r: r.accuracy or 0)
    run = ui.pick_linked_run(
        runs, "playground_pick", "playground_run", best.key, "Model", missing="Run {} is not a finished model to try here."
    )
    try:
        model_for(run)
    except StoreError as err:
        st.error(f"This run cannot be used: {ui.escaped(err)}")
        return

    drawing_view(run, runs)
    if run.config.dataset == "mnist":  # the personal set holds digits
        personal_ui(run)


@st.fragment
def drawing_view(run, runs) -> None:
    """Everything that depends on the drawing. A fragment: a stroke reruns this alone, not the model list,
    the personal set or its evaluation below; and within it only the answer unless a fold is open (what the
    model sees, inside the network, other models), so that a drawing costs the server little CPU."""
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
        verdict = prediction_ui(run, shown)
        checked = " and not-a-digit check" if ood.available(run.config) else ""
        total = prep_ms + st.session_state["model_ms"]
        st.caption(
            f"Answered in {total:.2f} ms (preprocessing {prep_ms:.2f} ms, model{checked} {st.session_state['model_ms']:.2f} ms)."
        )
        seen_ui(run, stages, shown)
    if run.config.dataset == "mnist":
        save_ui(shown, verdict)
    inside = st.expander("Inside the network: each layer's activations", key="inside_open", on_change="rerun")
    if inside.open:  # worked out only while open, as below
        with inside:
            activations_ui(run, shown)
    compare_ui(runs, shown, run)


def seen_ui(run, stages, shown: np.ndarray) -> None:
    """The preprocessing's stages (or the colour picture the model takes) and the saliency map, in a fold
    worked out only while it is open."""
    seen = st.expander("What the model sees: the drawing as the network's input", key="seen_open", on_change="rerun")
    if not seen.open:
        return
    with seen:
        if stages is not None:
            stages_ui(stages)
        else:
            size = run.config.data_spec().image_size
            st.image(shown, width=96, caption=f"{size}×{size} colour", alt="the picture as the model takes it")
        if st.toggle("Saliency: which pixels drove this prediction", key="show_saliency"):
            grey = shown if shown.ndim == 2 else shown.mean(2)
            st.plotly_chart(
                charts.saliency(grey, saliency(model_for(run), shown)),
                key="saliency",
                alt="The drawing with the pixels that moved the answer most glowing brightest.",
                config=ui.QUIET,
            )
            st.caption("The brighter a pixel glows, the more a small change there would change the answer.")


def ask_ui(run, digits: bool) -> None:
    """What to draw, before anything is drawn: a digit, or one of the run's classes by name."""
    if digits:
        st.markdown("### Draw a digit")
        st.caption("Draw one digit, 0–9, in the drawing area: the model's answer shows here when you lift the pen.")
        return
    names = ui.class_names(run.config.dataset)
    listed = ", ".join(ui.escaped(n) for n in names[:12]) + (" …" if len(names) > 12 else "")
    st.markdown("### Draw one of its classes")
    st.caption(f"This model knows {len(names)} classes: {listed}. Its answer shows here when you lift the pen.")


main()
