"""The data sets a run can name: the registry's own (DATASETS), and the ones people make (nnapp.data).

A data set a person makes is named by one version of it, NAME@VERSION, VERSION being a hash of its name,
class names, image shape, images and labels: adding an example makes a new version, and a run keeps the one
it trained on. A version is described by VERSION.json (and its images are VERSION.npz) in the datasets/
folder of a run store; every store opened in this process adds its folder here (nnapp.store does), and a
version found in any of them is the same data. The rules a data set's names follow live here too, so the
store, the importer, the CLI and the pages refuse the same things. Imports no torch.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from nnapp.engine.registry import DATASETS, DatasetSpec, UnknownName

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # a data set's name: it goes into refs, file names and commands
VERSION = re.compile(r"[0-9a-f]{12}")
REF = re.compile(r"([a-z0-9][a-z0-9_-]{0,39})@([0-9a-f]{12})")
MIN_CLASSES, MAX_CLASSES = 2, 50
MAX_CLASS_NAME = 60  # characters
MIN_PER_CLASS = 10  # examples a class needs before it trains: a few each for validation and test, the rest to learn from
MAX_IMAGES = 50_000
TEST_SHARE = 0.2  # of a data set's images, held out by class as each run's test set (the seed picks which)
MAX_DESCRIPTION = 64 * 1024  # bytes of a VERSION.json: 50 names of 60 characters and their counts are far less
# (image side, channels) of a grey and a colour data set, and the normalisation a network's first layer uses:
# grey examples are drawings made into MNIST's form, so MNIST's figures; colour ones are photos of any kind.
SHAPES = {1: 28, 3: 32}
NORMALISATION = {1: (0.1307, 0.3081), 3: ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))}

_folders: list[Path] = []
_found: dict[str, DatasetSpec] = {}  # versions never change: found once, kept


def add_folder(folder: Path) -> None:
    """Look for data set versions in `folder` too (a run store's datasets/)."""
    folder = Path(folder)
    if folder not in _folders:
        _folders.append(folder)


def is_ref(name: object) -> bool:
    return isinstance(name, str) and REF.fullmatch(name) is not None


def make_ref(name: str, version: str) -> str:
    return f"{name}@{version}"


def parts(ref: str) -> tuple[str, str]:
    """(name, version) of NAME@VERSION."""
    name, _, version = ref.partition("@")
    return name, version


def base_name(dataset: str) -> str:
    """The data set's name without its version: what a person calls it."""
    return parts(dataset)[0] if is_ref(dataset) else dataset


def find(name: str) -> DatasetSpec | None:
    """The spec of a registry name or of a version this process can see; None when there is none."""
    if name in DATASETS:
        return DATASETS[name]
    if not is_ref(name):
        return None
    if name in _found:
        return _found[name]
    for folder in _folders:
        spec = _read(folder / f"{parts(name)[1]}.json", name)
        if spec is not None:
            _found[name] = spec
            return spec
    return None


def spec(name: str) -> DatasetSpec:
    """find(name), or UnknownName saying what `dataset` takes."""
    found = find(name)
    if found is None:
        raise UnknownName(f"unknown data set {name!r}; choose from {', '.join(DATASETS)} or a data set of yours")
    return found


def arrays_path(ref: str) -> Path | None:
    """Where the images of version `ref` are (VERSION.npz in one of the folders), or None."""
    for folder in _folders:
        path = folder / f"{parts(ref)[1]}.npz"
        if path.is_file():
            return path
    return None


def remember(info: Any) -> DatasetSpec:
    """A version described elsewhere (an imported bundle's manifest), checked and known from now on in this
    process; ValueError with a sentence when it does not hold, or differs from the version of that name here."""
    made = own_spec(info)
    existing = find(made.identity)
    if existing is not None and existing != made:
        raise ValueError(f"data set {made.identity} here differs from the one described")
    _found[made.identity] = made
    return made


def _read(path: Path, ref: str) -> DatasetSpec | None:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DESCRIPTION + 1)
        made = own_spec(json.loads(raw.decode("utf-8"))) if len(raw) <= MAX_DESCRIPTION else None
    except (OSError, ValueError):  # missing, damaged or not ours: not a version here
        return None
    return made if made is not None and made.identity == ref else None


# --- a version's description ---------------------------------------------------------------------


def description(name: str, version: str, classes: list[str], channels: int, counts: list[int]) -> dict:
    """What VERSION.json holds: enough to check a config and build its network without the images."""
    return {
        "format": 1,
        "name": name,
        "version": version,
        "classes": list(classes),
        "channels": channels,
        "size": SHAPES.get(channels, 0),
        "counts": [int(c) for c in counts],
    }


def description_of(spec: DatasetSpec) -> dict:
    """The description a spec of a version was made from (own_spec's inverse)."""
    name, version = parts(spec.identity)
    return description(name, version, list(spec.classes), spec.channels, list(spec.counts))


def own_spec(info: Any) -> DatasetSpec:
    """The DatasetSpec a version's description makes; ValueError with a sentence for one that does not hold."""
    if not isinstance(info, dict) or info.get("format") != 1:
        raise ValueError("it is not a description of a data set nnapp wrote")
    name, version, classes, channels = info.get("name"), info.get("version"), info.get("classes"), info.get("channels")
    counts = info.get("counts")
    problem = name_problem(name, builtin_ok=False) or class_names_problem(classes) or _version_problem(version)
    if problem:
        raise ValueError(problem)
    if channels not in SHAPES or info.get("size") != SHAPES[channels]:
        raise ValueError("its images are neither 28×28 grey nor 32×32 colour")
    if not (isinstance(counts, list) and len(counts) == len(classes) and all(_count(c) for c in counts)):
        raise ValueError("its counts are not one whole number per class")
    total = sum(counts)
    if total > MAX_IMAGES:
        raise ValueError(f"it holds {total:,} images; the limit is {MAX_IMAGES:,}")
    test = test_count(total)
    mean, std = NORMALISATION[channels]
    colour = ", colour" if channels == 3 else ""
    return DatasetSpec(
        title=f"{name} (yours: {len(classes)} classes, {total:,} images{colour})",
        identity=make_ref(name, version),
        classes=tuple(classes),
        mean=mean,
        std=std,
        source=f"own:{version}",
        image_size=SHAPES[channels],
        train_size=total - test,
        test_size=test,
        channels=channels,
        test_share=TEST_SHARE,
        counts=tuple(counts),
    )


def test_count(total: int) -> int:
    """Images a run holds out as its test set, of a data set of `total`."""
    return max(1, round(total * TEST_SHARE)) if total >= 2 else 0


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_IMAGES


def _version_problem(version: Any) -> str | None:
    return None if isinstance(version, str) and VERSION.fullmatch(version) else "its version is not 12 hex digits"


# --- names ---------------------------------------------------------------------------------------------


def name_problem(name: Any, builtin_ok: bool = False) -> str | None:
    """Why `name` cannot name a data set of yours, or None."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return "a data set's name is 1 to 40 lower-case letters, digits, - or _, starting with a letter or digit (e.g. shapes)"
    if name in DATASETS and not builtin_ok:
        return f"{name} is one of nnapp's own data sets; choose another name"
    return None


def class_key(name: str) -> str:
    """What makes two class names the same: case and Unicode's ways of writing one letter aside."""
    return unicodedata.normalize("NFC", name).casefold()


def class_name_problem(name: Any) -> str | None:
    """Why `name` cannot name a class, or None (it is stored as given, without surrounding spaces)."""
    if not isinstance(name, str) or not name.strip():
        return "a class name is empty"
    shown = repr(name[:30]) + ("…" if len(name) > 30 else "")
    if len(name) > MAX_CLASS_NAME:
        return f"the class name {shown} is longer than {MAX_CLASS_NAME} characters"
    if not name.isprintable():
        return f"the class name {shown} holds a character that cannot be shown (a control character or line break)"
    if name != name.strip():
        return f"the class name {shown} begins or ends with a space"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"the class name {shown} cannot be a folder's name (it holds / or \\, or is . or ..)"
    return None


def class_names_problem(names: Any) -> str | None:
    """Why these cannot be a data set's classes (2 to 50 names, each sound, no two the same), or None."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return "the classes are not a list of names"
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        return f"a data set has {MIN_CLASSES} to {MAX_CLASSES} classes, not {len(names)}"
    for name in names:
        if problem := class_name_problem(name):
            return problem
    seen: dict[str, str] = {}
    for name in names:
        if class_key(name) in seen:
            return f"the class name {name[:40]!r} is given twice (as {seen[class_key(name)][:40]!r} too)"
        seen[class_key(name)] = name
    return None
