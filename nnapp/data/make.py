"""Making and changing a data set of yours: from files (a folder, a zip, a few uploads) or one drawing at a
time, each through the same checks; and writing one back out as a zip in the layout it can be read from."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from nnapp.data import files as sources
from nnapp.data.examples import as_example
from nnapp.data.files import Gathered, SourceError
from nnapp.engine import datasets
from nnapp.store.datasets import DataSet
from nnapp.store.store import Store

MODES = {"auto": None, "grey": 1, "colour": 3}


def add_files(
    store: Store, name: str, source: Path | bytes, mode: str = "auto", owner: str | None = None
) -> tuple[DataSet, Gathered]:
    """Add the images of a folder (a Path) or a zip (its bytes) to data set `name`, made if it does not exist:
    its folders are the classes. `mode` (auto, grey, colour) decides a new data set's images; an existing one
    keeps its own. SourceError or ValueError with a sentence, and nothing stored, when it cannot be done."""
    existing = _check_name(store, name)
    files, folders = sources.from_folder(source) if isinstance(source, Path) else sources.from_zip(source)
    channels = existing.channels if existing else MODES[mode]
    gathered = sources.gather(files, folders, channels, existing.classes if existing else ())
    return _store(store, name, existing, gathered, owner), gathered


def add_uploads(store: Store, name: str, uploads: list[tuple[str, bytes]], label: int) -> tuple[DataSet, Gathered]:
    """Add a few uploaded images, all of class `label`, to data set `name`."""
    existing = _check_name(store, name)
    if existing is None or not 0 <= label < len(existing.classes):
        raise ValueError(f"there is no such class in {name}")
    cls = existing.classes[label]
    gathered = sources.gather(sources.from_uploads(uploads, cls), set(), existing.channels, existing.classes)
    return _store(store, name, existing, gathered), gathered


def add_drawing(store: Store, name: str, image: np.ndarray, label: int) -> DataSet | None:
    """One drawing (the canvas's RGBA image) as an example of class `label`; None when it has no ink."""
    found = store.data_set(name)
    if found is None:
        raise ValueError(f"there is no data set named {name[:40]!r}")
    example = as_example(image, found.channels)
    return None if example is None else store.add_examples(name, example[None], [label])


def _check_name(store: Store, name: str) -> DataSet | None:
    existing = store.data_set(name)
    if existing is None and (problem := datasets.name_problem(name)):
        raise ValueError(problem)
    return existing


def _store(store: Store, name: str, existing: DataSet | None, gathered: Gathered, owner: str | None = None) -> DataSet:
    if not len(gathered.labels):
        raise SourceError("No image could be read, so nothing was added.")
    total = (existing.total if existing else 0) + len(gathered.labels)
    if total > datasets.MAX_IMAGES:
        raise SourceError(f"{name} would hold {total:,} images; a data set holds at most {datasets.MAX_IMAGES:,}.")
    if existing is None:
        store.create_dataset(name, gathered.classes, gathered.channels, owner)
    else:
        for cls in gathered.classes[len(existing.classes) :]:
            store.add_class(name, cls)
    return store.add_examples(name, gathered.images, gathered.labels)


def export_zip(store: Store, name: str) -> bytes:
    """The data set as a zip in the layout it is read from: NAME/CLASS/00001.png, one PNG per example."""
    found = store.data_set(name)
    if found is None:
        raise ValueError(f"there is no data set named {name[:40]!r}")
    ids, images, labels = store.examples(name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for example_id, x, label in zip(ids, images, labels, strict=True):
            png = io.BytesIO()
            Image.fromarray(x if x.ndim == 2 else x.transpose(1, 2, 0)).save(png, format="PNG")
            info = zipfile.ZipInfo(f"{name}/{found.classes[label]}/{example_id:06d}.png", date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16  # unzipped as ordinary files
            zf.writestr(info, png.getvalue())
    return buf.getvalue()
