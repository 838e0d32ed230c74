"""Data: your own classes. Name a data set and its classes, draw examples of each (or upload image files),
see them as galleries, delete a bad one, add more later; then train on it like on MNIST."""

from __future__ import annotations

import hashlib

import streamlit as st

import ui
from nnapp.data.examples import as_example
from nnapp.data.files import SourceError
from nnapp.data.make import add_files, add_uploads, export_zip
from nnapp.engine import datasets
from nnapp.store.datasets import DataSet
from nnapp.system.errors import DataError, StoreError
from panels.canvas import drawing_area
from panels.gallery import gallery_ui, recent

NEW = "＋ New data set"
UPLOAD_LIMIT = 200 << 20  # bytes of a zip uploaded here; larger ones: python -m nnapp data add NAME --from FILE.zip
WHY_TEN = (
    f"Each class needs at least {datasets.MIN_PER_CLASS} examples before it can train: a run keeps a fifth of them "
    "to test on and some to validate with, and learns from the rest."
)


def main() -> None:
    st.title("Data", anchor=False)
    st.caption(
        "Your own classes: name them, draw examples of each on the canvas (or upload image files), then train on "
        "them on the Train page and try the model in the Playground."
    )
    store = ui.store()
    names = [d.name for d in store.data_sets()]
    wanted = st.session_state.pop("data_name", None)
    if wanted in names:
        st.session_state["data_pick"] = wanted
    pick = st.selectbox("Data set", [*names, NEW], key="data_pick")
    if pick == NEW:
        new_ui()
        return
    data_set = store.data_set(pick)
    if data_set is None:  # deleted meanwhile, in another tab
        st.warning("That data set is no longer here.")
        return
    draw_ui(data_set.name)
    with st.expander("All examples, by class (✕ deletes one)"):
        gallery_ui(data_set.name)
    files_ui(data_set)
    manage_ui(data_set)


def new_ui() -> None:
    """A new data set: a name and its classes, drawn into next; or a zip whose folders are the classes."""
    st.subheader("A new data set")
    name = st.text_input("Name", key="new_dataset_name", placeholder="shapes", help=datasets.name_problem(""))
    classes_text = st.text_area(
        "Classes, one per line",
        key="new_classes",
        placeholder="circle\ntriangle\narrow",
        help="2 to 50 names, each up to 60 characters",
    )
    if st.button("Create", key="create_dataset", type="primary"):
        classes = [line.strip() for line in classes_text.splitlines() if line.strip()]
        try:
            made = ui.store().create_dataset(name.strip(), classes, owner=ui.who())
        except (ValueError, StoreError) as err:
            st.error(_sentence(err))
            return
        st.session_state["data_name"] = made.name
        st.rerun()
    st.divider()
    st.markdown("**Or from files:** a zip whose folders are the classes (PNG or JPEG images inside each).")
    zip_name = st.text_input("Name of the data set the zip makes", key="new_zip_name", placeholder="shapes")
    upload = st.file_uploader("Zip of class folders", type=["zip"], key="new_zip")
    if upload is not None and st.button("Make the data set from the zip", key="create_from_zip"):
        made = _add_zip(zip_name.strip(), upload)
        if made is not None:
            st.session_state["data_name"] = made.name
            st.rerun()


def summary_ui(data_set: DataSet) -> None:
    kind = "colour pictures, 32×32" if data_set.channels == 3 else "grey drawings, 28×28"
    st.caption(
        f"{data_set.total:,} examples in {len(data_set.classes)} classes · {kind} · version `{data_set.ref}` · made by "
        + ui.escaped(data_set.owner or "someone before names were kept")
    )
    if data_set.short:
        short = ", ".join(f"{ui.escaped(c)} ({n})" for c, n in zip(data_set.classes, data_set.counts, strict=True) if n < 10)
        st.info(f"Not ready to train yet. {WHY_TEN} Still short: {short}.")
    else:
        left, right = st.columns([3, 1])
        left.success(f"Ready to train: every class has at least {datasets.MIN_PER_CLASS} examples.")
        if right.button("Train on it", key="train_on_it", type="primary", icon=":material/model_training:"):
            st.session_state["train_dataset"] = data_set.name
            ui.open_train()
    if data_set.conflicts:
        st.warning(f"{data_set.conflicts} image(s) are in two classes or more: a network cannot learn both answers.")


@st.fragment
def draw_ui(name: str) -> None:
    """Draw an example, save it to the chosen class: the counter moves without the rest of the page rerunning.

    Each stroke's rerun makes the drawing an example (the preview shows it) and keeps it; Save stores that
    one in its button's callback, so the run the click starts draws the new count and an empty canvas at
    once instead of rerunning a second time to clear the canvas (benchmarks/bench_owndata.py section 22c)."""
    state, data_set = st.session_state, ui.store().data_set(name)
    if data_set is None:
        return
    summary_ui(data_set)  # here: a save changes its counts, version and readiness
    st.subheader("Draw examples")
    classes = list(range(len(data_set.classes)))
    if state.get("draw_class") not in classes:
        state["draw_class"] = 0
    label = st.radio("Class", classes, key="draw_class", horizontal=True, format_func=lambda i: ui.escaped(data_set.classes[i]))
    left, right = st.columns([1, 1.2])
    with right:  # first: the new count reaches the browser before the new canvas it has to mount
        if flash := state.pop("data_flash", None):
            st.warning(flash)
        counters(data_set, label)
    with left:
        version = state.setdefault("data_canvas_version", 0)
        result = drawing_area(f"data_canvas_{version}")
        image = result.image_data if result is not None else None
        example = as_example(image, data_set.channels) if image is not None else None
        state["data_example"] = (version, example)  # what Save stores: the drawing as this run made it
        save_col, clear_col = st.columns(2)
        save_col.button(
            "Save example", key="save_example", type="primary", icon=":material/add:", on_click=save_drawn, args=(name,)
        )
        clear_col.button("Clear", key="clear_example", icon=":material/ink_eraser:", on_click=new_canvas)
    with right:
        if example is not None:
            st.caption("What the network will see:")
            st.image(ui.shown_images(example[None])[0], width=84)
        _, newest, _ = ui.store().examples(name, label=label, limit=8)
        recent(newest, "Its newest examples:")


def save_drawn(name: str) -> None:
    """Save example's callback: store the drawing the last stroke's run made an example of, then a new canvas."""
    state = st.session_state
    version, example = state.get("data_example", (None, None))
    if version != state.get("data_canvas_version", 0) or example is None:
        state["data_flash"] = "Draw an example first: the canvas is empty."
        return
    try:
        ui.store().add_examples(name, example[None], [state.get("draw_class", 0)])
    except (ValueError, DataError, StoreError) as err:
        state["data_flash"] = _sentence(err)
        return
    new_canvas()


def new_canvas() -> None:
    """An empty canvas: a new key makes a new component."""
    st.session_state["data_canvas_version"] = st.session_state.get("data_canvas_version", 0) + 1
    st.session_state["data_example"] = (None, None)


def counters(data_set: DataSet, label: int) -> None:
    """How many examples the chosen class has (and what is still missing), and every class's count."""
    n = data_set.counts[label]
    need = datasets.MIN_PER_CLASS - n
    with st.container(key="draw_counter"):
        st.metric(
            f"Examples of {ui.escaped(data_set.classes[label])}",
            n,
            f"{need} more to train" if need > 0 else "enough to train",
            delta_color="off" if need > 0 else "normal",
            delta_arrow="off",
        )
    st.caption(" · ".join(f"{ui.escaped(c)} **{k}**" for c, k in zip(data_set.classes, data_set.counts, strict=True)))


def files_ui(data_set: DataSet) -> None:
    """Add images from files: a zip of class folders (new folders become classes), or images for one class."""
    with st.expander("Add images from files"):
        upload = st.file_uploader("A zip whose folders are the classes", type=["zip"], key="add_zip")
        if upload is not None and st.button("Add the zip's images", key="add_zip_go"):
            if _add_zip(data_set.name, upload) is not None:
                st.rerun()
        st.divider()
        label = st.selectbox(
            "Class", range(len(data_set.classes)), key="add_images_class", format_func=lambda i: data_set.classes[i]
        )
        files = st.file_uploader("PNG or JPEG images", type=["png", "jpg", "jpeg"], accept_multiple_files=True, key="add_images")
        if files and st.button(f"Add {len(files)} image(s) to this class", key="add_images_go"):
            try:
                made, gathered = add_uploads(ui.store(), data_set.name, [(f.name, f.getvalue()) for f in files], label)
            except (SourceError, ValueError, DataError, StoreError) as err:
                st.error(_sentence(err))
                return
            _report(made, gathered)


def _add_zip(name: str, upload) -> DataSet | None:
    """Read an uploaded zip into data set `name` once per content (a rerun does not read it again)."""
    blob = upload.getvalue()
    if len(blob) > UPLOAD_LIMIT:
        st.error(f"That zip is larger than {UPLOAD_LIMIT >> 20} MiB; add it with: python -m nnapp data add NAME --from FILE.zip")
        return None
    done = st.session_state.setdefault("data_zips", {})
    digest = hashlib.sha256(blob).hexdigest() + name
    if digest not in done:
        try:
            with st.spinner("Reading the images…"):
                done[digest] = add_files(ui.store(), name, blob, owner=ui.who())
        except (SourceError, ValueError, DataError, StoreError) as err:
            st.error(_sentence(err))
            return None
    made, gathered = done[digest]
    _report(made, gathered)
    return made


def _report(made: DataSet, gathered) -> None:
    st.success(f"Added {len(gathered.labels):,} images to {ui.escaped(made.name)}.")
    for note in gathered.notes():
        st.warning(ui.escaped(note))


def manage_ui(data_set: DataSet) -> None:
    """Export the data set as a zip; add a class; delete it (asking first when runs use it)."""
    store = ui.store()
    with st.expander("Add a class, export, delete"):
        new_class = st.text_input("A new class", key="add_class_name")
        if st.button("Add the class", key="add_class") and new_class.strip():
            try:
                store.add_class(data_set.name, new_class)
            except (ValueError, StoreError) as err:
                st.error(_sentence(err))
            else:
                st.rerun()
        st.download_button(
            "Download as a zip of class folders",
            lambda: export_zip(ui.store(), data_set.name),
            f"{data_set.name}.zip",
            "application/zip",
            key="export_dataset",
        )
        st.divider()
        delete_ui(data_set)


def delete_ui(data_set: DataSet) -> None:
    users = ui.store().runs_using(data_set.name)
    if users:
        keys = ", ".join(f"`{key[:8]}`" for key, _ in users[:12]) + (" …" if len(users) > 12 else "")
        st.warning(
            f"{len(users)} run(s) trained on this data set: {keys}. Deleting it keeps the versions they trained on, "
            "so they can still be shown, tried and exported."
        )
    confirm = st.checkbox(
        f"Yes, delete {ui.escaped(data_set.name)} and its {data_set.total:,} examples", key="confirm_delete_data"
    )
    if st.button("Delete the data set", key="delete_dataset", disabled=not confirm):
        ui.store().delete_dataset(data_set.name)
        st.session_state.pop("data_pick", None)
        st.rerun()


def _sentence(err: Exception) -> str:
    text = str(err).strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


main()
