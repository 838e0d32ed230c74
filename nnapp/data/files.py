"""Image files into a data set: a folder or a zip whose folders are the classes (torchvision's ImageFolder
layout), or a few files for one class.

Everything that could hurt is refused before an image is decoded, in one sentence: paths that lead out of
the zip, links, encryption, a bomb (more than MAX_UNPACKED bytes unpacked, or a member larger than its
header says), more than MAX_IMAGES images, one class, a class without images, class names that cannot be.
Images that do not decode are listed and the rest kept; the same image in two classes is said, not refused.
Each distinct file is decoded once, through nnapp.predict.images.load_image and its limits.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnapp.data.examples import as_example
from nnapp.engine import datasets
from nnapp.predict.images import ImageError, is_colour, load_image
from nnapp.system.zips import ZipProblem, member_problem, open_zip, read_member

MAX_UNPACKED = 500 * 1000 * 1000  # bytes a source may unpack to
MAX_FILE = 64 << 20  # bytes of one image file
SUFFIXES = (".png", ".jpg", ".jpeg")
IGNORED = ("__MACOSX", "Thumbs.db", "desktop.ini")  # what zipping on macOS or Windows adds


class SourceError(ValueError):
    """A folder, zip or upload that cannot become a data set; the message is one sentence."""


@dataclass
class Gathered:
    """Images read from files, in the store's layout, with what was left out and why."""

    classes: list[str]
    images: np.ndarray
    labels: np.ndarray
    channels: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    conflicts: list[str] = field(default_factory=list)  # files whose image is in another class too

    def notes(self, limit: int = 5) -> list[str]:
        """What a person should know about the files read, as sentences."""
        out = []
        if self.skipped:
            listed = "; ".join(f"{name} ({why})" for name, why in self.skipped[:limit])
            more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
            out.append(f"{len(self.skipped)} file(s) were left out: {listed}{more}.")
        if self.conflicts:
            listed = ", ".join(self.conflicts[:limit]) + (" …" if len(self.conflicts) > limit else "")
            out.append(
                f"{len(self.conflicts)} image(s) are in two classes or more ({listed}); they were kept, "
                "but a network cannot learn both answers."
            )
        return out


@dataclass
class _File:
    name: str  # as shown in messages: the path inside the zip or folder
    cls: str
    data: bytes | None = None
    path: Path | None = None  # read when decoded (a folder's files)


# --- sources ---------------------------------------------------------------------------------------------


def from_zip(blob: bytes) -> tuple[list[_File], set[str]]:
    """The image files of a zip in ImageFolder layout and its class folders; SourceError for a hostile zip."""
    try:
        zf = open_zip(blob)
    except ZipProblem as err:
        raise SourceError(f"That file {err}.") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if problem := member_problem(info):
                raise SourceError(f"The zip {problem}: nothing was read from it.")
        _limits(sum(i.file_size for i in infos), sum(_is_image(i.filename) for i in infos if not i.is_dir()), "zip")
        paths = [(i.filename.replace("\\", "/").strip("/").split("/"), i) for i in infos]
        paths = [(p, i) for p, i in paths if not _ignored(p)]
        prefix = _wrapper([p for p, i in paths if not i.is_dir()])
        files, folders = [], set()
        for parts, info in paths:
            parts = parts[prefix:]
            if info.is_dir() or len(parts) < 2:
                folders |= {parts[0]} if info.is_dir() and parts else set()
                if not info.is_dir() and parts:
                    files.append(_File("/".join(parts), ""))
                continue
            folders.add(parts[0])
            data = _read_zip(zf, info) if _is_image(parts[-1]) and info.file_size <= MAX_FILE else None
            files.append(_File("/".join(parts), parts[0], data))
    return files, folders


def from_folder(folder: Path) -> tuple[list[_File], set[str]]:
    """The image files under a folder in ImageFolder layout and its class folders; SourceError for links,
    a folder too large, or one that cannot be read."""
    entries = list(_walk(Path(folder), Path(folder)))
    _limits(sum(size for _, _, size in entries), sum(_is_image(rel.name) for rel, _, _ in entries), "folder")
    parts = [rel.parts for rel, _, _ in entries]
    prefix = _wrapper([list(p) for p in parts])
    files, folders = [], set()
    for rel, path, _ in entries:
        inside = rel.parts[prefix:]
        if len(inside) < 2:
            files.append(_File("/".join(inside), ""))
            continue
        folders.add(inside[0])
        files.append(_File("/".join(inside), inside[0], path=path if path and _is_image(rel.name) else None))
    folders |= {p.name for p in _class_folders(Path(folder), prefix, parts)}
    return files, folders


def from_uploads(files: list[tuple[str, bytes]], cls: str) -> list[_File]:
    """A few uploaded images, all of class `cls`."""
    if len(files) > datasets.MAX_IMAGES:
        raise SourceError(f"That is {len(files):,} images; a data set holds at most {datasets.MAX_IMAGES:,}.")
    _limits(sum(len(b) for _, b in files), len(files), "upload")
    return [_File(name[:80], cls, data if _is_image(name) else None) for name, data in files]


def _walk(root: Path, top: Path) -> Iterator[tuple[Path, Path | None, int]]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as err:
        raise SourceError(f"{root} cannot be read ({err.strerror or err}).") from None
    for entry in entries:
        rel = Path(entry.path).relative_to(top)
        if _ignored(list(rel.parts)):
            continue
        if entry.is_symlink():
            raise SourceError(f"{rel} is a symbolic link; nnapp reads only plain files and folders, so nothing was read.")
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            yield from _walk(Path(entry.path), top)
        elif stat.S_ISREG(mode):
            yield rel, Path(entry.path), entry.stat(follow_symlinks=False).st_size
        else:
            yield rel, None, 0  # a device or a pipe: listed as left out, never opened


def _class_folders(root: Path, prefix: int, parts: list[tuple[str, ...]]) -> list[Path]:
    """Empty class folders count as classes too (and are refused as such)."""
    base = root.joinpath(*parts[0][:prefix]) if prefix and parts else root
    try:
        return [p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not _ignored([p.name])]
    except OSError:
        return []


def _limits(unpacked: int, images: int, what: str) -> None:
    if unpacked > MAX_UNPACKED:
        raise SourceError(
            f"The {what} unpacks to {unpacked / 1e6:,.0f} MB; the limit is {MAX_UNPACKED / 1e6:,.0f} MB, so nothing was read."
        )
    if images > datasets.MAX_IMAGES:
        raise SourceError(f"The {what} holds {images:,} images; a data set holds at most {datasets.MAX_IMAGES:,}.")


def _read_zip(zf, info) -> bytes:
    try:
        return read_member(zf, info)
    except ZipProblem as err:
        raise SourceError(f"The zip {err}: nothing was read from it.") from None


def _wrapper(paths: list[list[str]]) -> int:
    """1 when every file sits in one folder that holds the class folders (a zipped folder), else 0."""
    tops = {p[0] for p in paths if p}
    return 1 if len(tops) == 1 and paths and all(len(p) >= 3 for p in paths) else 0


def _ignored(parts: list[str]) -> bool:
    return any(p.startswith(".") or p in IGNORED for p in parts if p)


def _is_image(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


# --- decoding --------------------------------------------------------------------------------------------


def gather(files: list[_File], folders: set[str], channels: int | None, classes: tuple[str, ...] = ()) -> Gathered:
    """Decode each distinct file once and make it an example of its class (nnapp.data.examples).

    `channels`: the data set's (1 grey, 3 colour), or None to decide from the files (colour when any image
    has colour). `classes`: a data set's classes already; folders that name none of them are added after them.
    """
    names = _class_list(folders, classes)
    index = {datasets.class_key(c): i for i, c in enumerate(names)}
    decoded: dict[str, tuple[np.ndarray | None, np.ndarray | None, bool] | str] = {}
    kept: list[tuple[str, int, str]] = []  # (file, label, content sha)
    skipped = []
    for f in files:
        why, sha = _decode(f, channels, decoded)
        if not f.cls:
            skipped.append((f.name, "not in a class folder"))
        elif why:
            skipped.append((f.name, why))
        else:
            kept.append((f.name, index[datasets.class_key(f.cls)], sha))
    colour = channels == 3 or (channels is None and any(decoded[sha][2] for _, _, sha in kept))
    made = [(name, label, decoded[sha][1 if colour else 0]) for name, label, sha in kept]
    made, more = _with_ink(made)
    skipped += more
    empty = [c for c in names if c not in classes and not any(names[label] == c for _, label, _ in made)]
    if empty:
        raise SourceError(f"Class {empty[0][:40]!r} has no images that could be read; add some, or remove its folder.")
    return _result(names, made, 3 if colour else 1, skipped)


def _class_list(folders: set[str], classes: tuple[str, ...]) -> list[str]:
    known = {datasets.class_key(c) for c in classes}
    names = [*classes, *sorted(f for f in folders if datasets.class_key(f) not in known)]
    if problem := datasets.class_names_problem(names):
        raise SourceError(f"The folders cannot be a data set's classes: {problem}.")
    return names


def _decode(f: _File, channels: int | None, decoded: dict) -> tuple[str | None, str | None]:
    """(why it is left out, or None; the sha of its content), decoding each content once into `decoded`."""
    data = f.data
    if data is None and f.path is not None:
        try:
            with f.path.open("rb") as fh:
                data = fh.read(MAX_FILE + 1)
        except OSError as err:
            return f"cannot be read: {err.strerror or err}", None
    if data is None:
        return "not a PNG or JPEG file", None
    if len(data) > MAX_FILE:
        return f"larger than {MAX_FILE >> 20} MiB", None
    sha = hashlib.sha256(data).hexdigest()
    if sha not in decoded:
        try:
            rgba = load_image(data)
            grey = as_example(rgba, 1) if channels != 3 else None
            decoded[sha] = (grey, as_example(rgba, 3) if channels != 1 else None, channels is None and is_colour(rgba))
        except ImageError as err:
            decoded[sha] = str(err).rstrip(".").replace("; upload a PNG or JPEG of a digit", "")
    return (decoded[sha], None) if isinstance(decoded[sha], str) else (None, sha)


def _with_ink(made: list) -> tuple[list, list]:
    """Grey images with no ink at all (blank) are left out."""
    return [m for m in made if m[2] is not None], [(name, "no ink: the image is blank") for name, _, x in made if x is None]


def _result(names: list[str], made: list, channels: int, skipped: list) -> Gathered:
    shape = (28, 28) if channels == 1 else (3, 32, 32)
    images = np.stack([x for _, _, x in made]) if made else np.zeros((0, *shape), np.uint8)
    labels = np.array([label for _, label, _ in made], np.int64)
    digests = [hashlib.sha1(x.tobytes()).digest() for _, _, x in made]
    seen: dict[bytes, set[int]] = {}
    for digest, (_, label, _) in zip(digests, made, strict=True):
        seen.setdefault(digest, set()).add(label)
    conflicts = [name for digest, (name, _, _) in zip(digests, made, strict=True) if len(seen[digest]) > 1]
    return Gathered(names, images, labels, channels, skipped, conflicts)
