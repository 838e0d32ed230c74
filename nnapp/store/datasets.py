"""The data sets people make, kept in the run store: each one's examples as rows (the copy being edited), and
every version a run trains on frozen beside them as one file of arrays.

    runs.sqlite   datasets (name, classes, channels, current version), examples (one row per image, uint8 bytes)
    datasets/     VERSION.json (what nnapp.engine.datasets reads to check a config) and VERSION.npz (the images)

An edit (an example added or deleted, a class added) makes a new current version in the same transaction
and writes its description (again on a read, should a crash have lost it); its images are written once a
run (or a range test) claims it (freeze). A version stays while a run names it; one that nothing names is
removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnapp.engine import datasets
from nnapp.engine.people import machine_user
from nnapp.store.owners import owner_of
from nnapp.system.errors import DataError
from nnapp.system.files import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY, classes TEXT NOT NULL, channels INTEGER NOT NULL, version TEXT NOT NULL,
    created REAL NOT NULL, changed REAL NOT NULL, owner TEXT
);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, label INTEGER NOT NULL, pixels BLOB NOT NULL,
    sha TEXT NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_of ON examples (dataset, label);
"""
DATASET_IN_CONFIG = re.compile(r'"dataset": "([^"\\]{1,80})"')  # as RunConfig.to_json writes it


@dataclass(frozen=True)
class DataSet:
    """A data set of yours as it stands: its classes, how many examples each has, its current version."""

    name: str
    classes: tuple[str, ...]
    channels: int
    version: str
    counts: tuple[int, ...]
    created: float
    changed: float
    conflicts: int = 0  # images that are in two classes or more
    owner: str | None = None  # who made it (nnapp.engine.people); None for one from before names were kept

    @property
    def ref(self) -> str:
        """What a run's config names: this version of it."""
        return datasets.make_ref(self.name, self.version)

    @property
    def size(self) -> int:
        return datasets.SHAPES[self.channels]

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's array: size×size grey, or 3×size×size colour."""
        return (self.size, self.size) if self.channels == 1 else (self.channels, self.size, self.size)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def short(self) -> list[str]:
        """Classes with fewer examples than training needs."""
        return [c for c, n in zip(self.classes, self.counts, strict=True) if n < datasets.MIN_PER_CLASS]

    def description(self) -> dict:
        return datasets.description(self.name, self.version, list(self.classes), self.channels, list(self.counts))


class DataSets:
    """The data sets part of nnapp.store.Store (which provides home, _db and _transaction)."""

    home: Path

    @property
    def datasets_folder(self) -> Path:
        return self.home / "datasets"

    def create_dataset(self, name: str, classes: list[str], channels: int = 1, owner: str | None = None) -> DataSet:
        """A new, empty data set made by `owner` (the machine's user by default); ValueError with a sentence for
        a name or classes that cannot be, or a name taken."""
        classes = [c.strip() if isinstance(c, str) else c for c in classes]
        problem = datasets.name_problem(name) or datasets.class_names_problem(classes)
        if problem is None and channels not in datasets.SHAPES:
            problem = "a data set's images are grey (1 channel) or colour (3)"
        if problem:
            raise ValueError(problem)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                raise ValueError(f"there is a data set named {name} already; choose another name, or add to it")
            now = time.time()
            db.execute(
                "INSERT INTO datasets (name, classes, channels, version, created, changed, owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, json.dumps(classes), channels, "0" * 12, now, now, owner or machine_user()),
            )
            made = self._new_version(db, name)
        return made

    def data_sets(self) -> list[DataSet]:
        """Every data set of yours, by name (each current version described in datasets/)."""
        with self._db() as db:
            names = [r["name"] for r in db.execute("SELECT name FROM datasets ORDER BY name")]
            found = [d for name in names if (d := _read(db, name)) is not None]
        for d in found:
            self._describe(d)
        return found

    def data_set(self, name: str) -> DataSet | None:
        """Data set `name` as it stands (its current version described in datasets/), or None."""
        with self._db() as db:
            found = _read(db, name)
        return self._describe(found) if found is not None else None

    def _describe(self, data_set: DataSet) -> DataSet:
        if not self.readonly:
            self.write_description(data_set.description())
        return data_set

    def add_examples(self, name: str, images: np.ndarray, labels) -> DataSet:
        """Add images (uint8, each of the data set's shape) with their class indices, in one transaction."""
        images, labels = np.ascontiguousarray(images, np.uint8), [int(v) for v in labels]
        now = time.time()
        with self._transaction() as db:
            found = _read(db, name)
            if found is None:
                raise ValueError(f"there is no data set named {name[:40]!r}")
            if images.shape[1:] != found.shape or len(images) != len(labels):
                raise ValueError(f"each example of {name} is {'×'.join(map(str, found.shape))} pixels, with one class")
            if any(not 0 <= v < len(found.classes) for v in labels):
                raise ValueError(f"{name} has classes 0 to {len(found.classes) - 1} only")
            if found.total + len(labels) > datasets.MAX_IMAGES:
                raise DataError(f"{name} would hold {found.total + len(labels):,} images; the limit is {datasets.MAX_IMAGES:,}")
            db.executemany(
                "INSERT INTO examples (dataset, label, pixels, sha, created) VALUES (?, ?, ?, ?, ?)",
                [(name, v, (b := x.tobytes()), hashlib.sha256(b).hexdigest(), now) for x, v in zip(images, labels, strict=True)],
            )
            made = self._new_version(db, name, found.version)
        return made

    def add_class(self, name: str, class_name: str) -> DataSet:
        with self._transaction() as db:
            found = _read(db, name)
            if found is None:
                raise ValueError(f"there is no data set named {name[:40]!r}")
            classes = [*found.classes, class_name.strip() if isinstance(class_name, str) else class_name]
            if problem := datasets.class_names_problem(classes):
                raise ValueError(problem)
            db.execute("UPDATE datasets SET classes=? WHERE name=?", (json.dumps(classes), name))
            made = self._new_version(db, name, found.version)
        return made

    def delete_examples(self, name: str, ids: list[int]) -> DataSet | None:
        with self._transaction() as db:
            found = _read(db, name)
            if found is None:
                return None
            db.executemany("DELETE FROM examples WHERE dataset=? AND id=?", [(name, int(i)) for i in ids])
            made = self._new_version(db, name, found.version)
        return made

    def examples(self, name: str, label: int | None = None, limit: int | None = None) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(ids, images, labels) of a data set's examples, newest first; of one class with `label`."""
        found = self.data_set(name)
        if found is None:
            return [], np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
        where, args = ("dataset=?", [name]) if label is None else ("dataset=? AND label=?", [name, int(label)])
        query = f"SELECT id, label, pixels FROM examples WHERE {where} ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        with self._db() as db:
            rows = db.execute(query, (*args, *([int(limit)] if limit else []))).fetchall()
        size = int(np.prod(found.shape))
        rows = [r for r in rows if isinstance(r["pixels"], bytes) and len(r["pixels"]) == size]  # a damaged row: left out
        images = np.frombuffer(b"".join(r["pixels"] for r in rows), np.uint8).reshape(len(rows), *found.shape)
        return [r["id"] for r in rows], images, np.array([r["label"] for r in rows], np.int64)

    def freeze(self, ref: str) -> Path:
        """The file of version `ref`'s images, written now from the examples if it is not there yet;
        DataError when the data set has changed since (or is gone) and that version cannot be made again."""
        name, version = datasets.parts(ref)
        path = self.datasets_folder / f"{version}.npz"
        if path.is_file():
            return path
        with self._db() as db:
            found = _read(db, name)
            if found is None:
                raise DataError(
                    f"The images of data set {ref} are not in this run store (deleted, or a run imported without them)."
                )
            if found.version != version:
                raise DataError(
                    f"The data set {name} has changed since {ref} was chosen (it is {found.ref} now); choose it again."
                )
            rows = db.execute("SELECT label, pixels FROM examples WHERE dataset=? ORDER BY label, sha", (name,)).fetchall()
        images = np.frombuffer(b"".join(r["pixels"] for r in rows), np.uint8).reshape(len(rows), *found.shape)
        buf = io.BytesIO()
        np.savez(buf, images=images, labels=np.array([r["label"] for r in rows], np.int64))
        self.write_description(found.description())
        atomic_write(path, buf.getvalue())
        return path

    def runs_using(self, name: str) -> list[tuple[str, str]]:
        """(run key, version) of every run whose config names a version of data set `name`."""
        return [(key, dataset) for key, dataset in self._run_datasets() if datasets.base_name(dataset) == name]

    def delete_dataset(self, name: str) -> None:
        """Remove a data set's examples; the versions runs name stay with them (see prune_versions)."""
        with self._transaction() as db:
            db.execute("DELETE FROM examples WHERE dataset=?", (name,))
            db.execute("DELETE FROM datasets WHERE name=?", (name,))
        self.prune_versions()

    def prune_versions(self) -> list[str]:
        """Remove the files of versions that no run names and that are no data set's current one."""
        with self._db() as db:
            current = {r["version"] for r in db.execute("SELECT version FROM datasets")}
        used = current | {datasets.parts(d)[1] for _, d in self._run_datasets() if datasets.is_ref(d)}
        removed = []
        for path in self.datasets_folder.glob("*.*"):
            if path.suffix in (".json", ".npz") and datasets.VERSION.fullmatch(path.stem) and path.stem not in used:
                path.unlink(missing_ok=True)
                removed.append(path.stem)
        return removed

    def _run_datasets(self) -> list[tuple[str, str]]:
        with self._db() as db:
            rows = db.execute("SELECT key, config FROM runs WHERE config LIKE '%@%'").fetchall()
        return [(r["key"], m[1]) for r in rows if isinstance(r["config"], str) and (m := DATASET_IN_CONFIG.search(r["config"]))]

    def _new_version(self, db, name: str, previous: str | None = None) -> DataSet:
        """Work out the data set's version from its examples, record it and write its description; the previous
        version's description goes when nothing needs it (its images were never written: no run names it)."""
        row = db.execute("SELECT classes, channels FROM datasets WHERE name=?", (name,)).fetchone()
        classes = json.loads(row["classes"])
        h = hashlib.sha256(json.dumps({"name": name, "classes": classes, "channels": row["channels"]}, sort_keys=True).encode())
        for r in db.execute("SELECT label, sha FROM examples WHERE dataset=? ORDER BY label, sha", (name,)):
            h.update(f"{r['label']}:{r['sha']}\n".encode())
        version = h.hexdigest()[:12]
        db.execute("UPDATE datasets SET version=?, changed=? WHERE name=?", (version, time.time(), name))
        made = _read(db, name)
        self.write_description(made.description(), durable=False)
        if previous and previous != version and not (self.datasets_folder / f"{previous}.npz").exists():
            named = db.execute("SELECT 1 FROM runs WHERE config LIKE ? LIMIT 1", (f'%@{previous}"%',)).fetchone()
            if not named:  # an imported run names a version whose images are elsewhere
                (self.datasets_folder / f"{previous}.json").unlink(missing_ok=True)
        return made

    def write_description(self, description: dict, durable: bool = True) -> None:
        """A version's description in datasets/ (once: a version never changes). Not `durable`: written whole
        but not synced to the disk, as an edit writes it (the database can say it again: see _describe)."""
        path = self.datasets_folder / f"{description['version']}.json"
        if path.is_file():
            return
        self.datasets_folder.mkdir(exist_ok=True)
        blob = json.dumps(description, indent=1).encode()
        if durable:
            atomic_write(path, blob)
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")  # a killed writer's: see clean_temp_files
        tmp.write_bytes(blob)
        os.replace(tmp, path)


def _read(db, name: str) -> DataSet | None:
    row = db.execute("SELECT * FROM datasets WHERE name=?", (name,)).fetchone()
    if row is None:
        return None
    classes = tuple(json.loads(row["classes"]))
    counts = [0] * len(classes)
    for r in db.execute("SELECT label, COUNT(*) AS n FROM examples WHERE dataset=? GROUP BY label", (name,)):
        if 0 <= r["label"] < len(counts):
            counts[r["label"]] = r["n"]
    conflicts = db.execute(
        "SELECT COUNT(*) FROM (SELECT sha FROM examples WHERE dataset=? GROUP BY sha HAVING COUNT(DISTINCT label) > 1)", (name,)
    ).fetchone()[0]
    return DataSet(
        name, classes, row["channels"], row["version"], tuple(counts), row["created"], row["changed"], conflicts, owner_of(row)
    )
