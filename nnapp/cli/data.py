"""The CLI's commands on data sets of yours: `python -m nnapp data add | list | show | delete | export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.cli.common import CLIError, printable
from nnapp.engine import datasets
from nnapp.store.database import READ_ONLY
from nnapp.system.errors import StoreError
from nnapp.system.files import atomic_write, os_error_text

if TYPE_CHECKING:  # the store (and numpy) load when a command runs, not for --help
    from nnapp.store.store import Store

MAX_ZIP = 600 * 1000 * 1000  # bytes of a zip read from disk: its own limit on what it unpacks to is checked inside


def add_parsers(sub) -> None:
    data = sub.add_parser("data", help="make, list, show, delete and export data sets of your own classes")
    verbs = data.add_subparsers(dest="verb", required=True, parser_class=type(data))
    add = verbs.add_parser("add", help="add the images of a folder or zip whose folders are the classes (made if new)")
    add.add_argument("name", help="the data set's name: lower-case letters, digits, - and _")
    add.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR_OR_ZIP")
    add.add_argument(
        "--mode",
        choices=("auto", "grey", "colour"),
        default="auto",
        help="a new data set's images (auto: colour if any image is)",
    )
    verbs.add_parser("list", help="list your data sets")
    show = verbs.add_parser("show", help="a data set's classes, counts, version and the runs that use it")
    show.add_argument("name")
    delete = verbs.add_parser("delete", help="delete a data set (the versions runs trained on stay with them)")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="delete it even though runs use it")
    export = verbs.add_parser("export", help="write a data set as a zip of class folders of PNGs")
    export.add_argument("name")
    export.add_argument("--to", type=Path, default=Path("."), metavar="DIR|FILE.zip", help="a folder, or the zip's file name")


def found(store: Store, name: str):
    data_set = store.data_set(name)
    if data_set is None:
        known = ", ".join(d.name for d in store.data_sets()) or "none yet"
        raise CLIError(f"no data set named {name[:40]!r} (yours: {known}); see python -m nnapp data list")
    return data_set


def cmd_add(args: argparse.Namespace, store: Store) -> int:
    from nnapp.data.files import SourceError
    from nnapp.data.make import add_files

    source = args.source
    if source.is_symlink():
        raise CLIError(f"{source} is a symbolic link; give the folder or zip itself")
    if not source.is_dir():
        source = _read_zip(source)
    try:
        data_set, gathered = add_files(store, args.name, source, args.mode)
    except (SourceError, ValueError) as err:
        raise CLIError(str(err).rstrip(".")) from None
    print(f"added {len(gathered.labels):,} images to {data_set.name}: {counts_text(data_set)}")
    for note in gathered.notes():
        print(f"note      {note}")
    print(f"version   {data_set.ref}")
    print(ready_text(data_set))
    return 0


def _read_zip(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise CLIError(f"{path} is neither a folder nor a zip file")
        with path.open("rb") as f:
            blob = f.read(MAX_ZIP + 1)
    except OSError as err:
        raise CLIError(f"cannot read {os_error_text(err)}") from None
    if len(blob) > MAX_ZIP:
        raise CLIError(f"{path} is larger than {MAX_ZIP / 1e6:,.0f} MB")
    return blob


def counts_text(data_set) -> str:
    return ", ".join(f"{c} {n}" for c, n in zip(data_set.classes, data_set.counts, strict=True))


def ready_text(data_set) -> str:
    if data_set.short:
        return (
            f"not ready: {', '.join(data_set.short[:5])} need at least {datasets.MIN_PER_CLASS} examples each "
            "(some go to validation and test, the rest to learn from)"
        )
    return f"ready: python -m nnapp train --set dataset={data_set.name}"


def cmd_list(args: argparse.Namespace, store: Store) -> int:
    data_sets = store.data_sets()
    if not data_sets:
        print("no data sets yet: python -m nnapp data add NAME --from FOLDER_OR_ZIP (or draw one on the Data page)")
        return 0
    print(f"{'name':20}  {'classes':>7}  {'images':>7}  {'kind':6}  {'version':12}  {'ready':5}  made by")
    for d in data_sets:
        kind = "colour" if d.channels == 3 else "grey"
        ready = "no" if d.short else "yes"
        print(
            f"{d.name:20}  {len(d.classes):>7}  {d.total:>7,}  {kind:6}  {d.version:12}  {ready:5}  {printable(d.owner or '-')}"
        )
    return 0


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    d = found(store, args.name)
    print(f"data set  {d.name}  ({'colour 32×32' if d.channels == 3 else 'grey 28×28'}, {d.total:,} images)")
    print(f"version   {d.ref}")
    print(f"made by   {printable(d.owner or '-')}")
    for cls, n in zip(d.classes, d.counts, strict=True):
        print(f"  {cls[:60]:<60} {n:>6,}")
    if d.conflicts:
        print(f"note      {d.conflicts} image(s) are in two classes or more")
    print(ready_text(d))
    for key, version in store.runs_using(d.name):
        print(f"run       {key}  on {version}")
    return 0


def cmd_delete(args: argparse.Namespace, store: Store) -> int:
    d = found(store, args.name)
    users = store.runs_using(d.name)
    if users and not args.yes:
        print(f"{len(users)} run(s) use {d.name}: " + ", ".join(key for key, _ in users[:10]) + (" …" if len(users) > 10 else ""))
        if not _confirmed("Delete it anyway (the runs keep the versions they trained on)? [y/N] "):
            raise CLIError(f"{d.name} was not deleted; to delete it anyway: python -m nnapp data delete {d.name} --yes")
    store.delete_dataset(d.name)
    kept = f"; the versions {len(users)} run(s) trained on are kept with them" if users else ""
    print(f"deleted {d.name}{kept}")
    return 0


def _confirmed(question: str) -> bool:
    """A yes typed at a terminal; no terminal, no yes."""
    return sys.stdin.isatty() and input(question).strip().lower() in ("y", "yes")


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    from nnapp.data.make import export_zip

    d = found(store, args.name)
    path = args.to if args.to.suffix.lower() == ".zip" else args.to / f"{d.name}.zip"
    if path.exists():
        raise CLIError(f"{path} already exists; choose another name or move it away")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, export_zip(store, d.name))
    except OSError as err:
        raise CLIError(f"cannot write {os_error_text(err, path)}") from None
    print(path)
    return 0


VERBS = {"add": cmd_add, "list": cmd_list, "show": cmd_show, "delete": cmd_delete, "export": cmd_export}


def cmd_data(args: argparse.Namespace, store: Store) -> int:
    if store.readonly and args.verb in ("add", "delete"):
        raise StoreError(f"the run store {store.home} {READ_ONLY}")
    return VERBS[args.verb](args, store)


COMMANDS = {"data": cmd_data}
WRITES = ()  # add and delete refuse a read-only store themselves; list, show and export read
