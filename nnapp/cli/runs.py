"""The CLI's commands on runs: train, list, show, export, import, delete."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.cli.common import CLIError, config_arguments, find, load_config, print_run, printable, read_file
from nnapp.engine import datasets
from nnapp.engine.config import choices_help
from nnapp.engine.presets import SMALL_DATA_WHY
from nnapp.engine.records import Claim
from nnapp.engine.states import ClaimState, Status
from nnapp.store.comparable import epoch_line
from nnapp.system.compat import keep_freed_memory
from nnapp.system.process import note_machine

if TYPE_CHECKING:  # the store (and numpy) load when a command runs, not for --help
    from nnapp.store.store import Store


def add_parsers(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train a config, or show its stored run",
        epilog="choices: " + choices_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_arguments(train)
    train.add_argument(
        "--continue",
        dest="continue_from",
        metavar="KEY",
        help="continue a finished run for more epochs (--set epochs=N) as a new run that records it as its parent",
    )
    train.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("list", help="list stored runs")
    show = sub.add_parser("show", help="show one run")
    show.add_argument("key", help="a run key or an unambiguous prefix")
    exp = sub.add_parser("export", help="write a run as one zip bundle (config, weights, torch.export program, predict.py)")
    exp.add_argument("key")
    exp.add_argument("--to", type=Path, required=True, metavar="DIR|FILE.zip", help="a folder, or the bundle's file name")
    imp = sub.add_parser("import", help="add the run in a bundle written by export, after checking every part of it")
    imp.add_argument("file", type=Path, metavar="FILE.zip")
    delete = sub.add_parser("delete", help="delete a run, its metrics and its weights (an unreadable run too)")
    delete.add_argument("key", help="a run key or an unambiguous prefix")


class ProgressBar:
    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream, self.width, self.last = stream, width, 0.0

    def __call__(self, p) -> None:
        now = time.perf_counter()
        if now - self.last < 0.1 and p.epoch_row is None and p.step < p.total_steps:
            return
        self.last = now
        done = p.step / max(p.total_steps, 1)
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        eta = f"ETA {p.elapsed / done - p.elapsed:4.0f}s" if 0 < done < 1 else ""
        rate = f"{p.samples_per_s:8,.0f} samples/s" if p.samples_per_s else " " * 18
        line = f"\r[{bar}] epoch {p.epoch}/{p.epochs} step {p.step}/{p.total_steps} {rate} {eta} {p.phase:<10}"
        if p.epoch_row:
            line = f"\r{epoch_line(p.epoch_row)} | {p.epoch_row['seconds']:.1f}s"
            self.stream.write(line.ljust(110) + "\n")
        else:
            self.stream.write(line)
        self.stream.flush()


def cmd_train(args: argparse.Namespace, store: Store) -> int:
    note_machine()  # the thread governor's first look covers torch's import: a busy neighbour is seen at once
    keep_freed_memory()
    # torch is imported here, not at the top: list, show and --help start without it
    from nnapp.engine.device import device_label, set_threads, training_threads
    from nnapp.jobs.runs import train_or_load

    checked = continued_config(args, store) if args.continue_from else load_config(args, store)
    config = checked.config
    if datasets.is_ref(config.dataset) and not (args.preset or args.config or args.continue_from):
        print(SMALL_DATA_WHY.split(". ")[0] + ".", file=sys.stderr)
    set_threads(training_threads())
    claims = []

    def announce(claim: Claim) -> None:
        claims.append(claim)
        if claim.state == ClaimState.CLAIMED:
            what = "retraining" if claim.key != config.key() else "training"
            print(f"{what} {config.key()} on {device_label()}: {config.describe()}", file=sys.stderr)
        elif claim.state == ClaimState.ATTACHED:
            print(f"following {claim.key}: another process is training this config", file=sys.stderr)

    started = time.perf_counter()
    run = train_or_load(checked, store, force=args.force, on_progress=None if args.quiet else ProgressBar(), on_claim=announce)
    took = time.perf_counter() - started
    cached = claims[0].state == ClaimState.CACHED
    if not cached and not args.quiet:
        print(file=sys.stderr)  # end the progress bar's line
    if cached:
        print(f"loaded from cache in {took:.3f}s")
    print_run(run)
    if run.is_retrain():
        print("note      the retrain did not finish; the stored run is unchanged")
    return 0 if run.status == Status.DONE else 1


def continued_config(args: argparse.Namespace, store: Store):
    """--continue KEY: the run's config from its weights, for --set epochs=N more (its own count by default)."""
    from nnapp.jobs.runs import continue_config, continue_problem

    if args.preset or args.config:
        raise CLIError("--continue trains the run's own config: change it with --set, not --preset or --config")
    parent = find(store, args.continue_from)
    if not parent.has_weights():
        raise CLIError(f"run {parent.key} has no weights to continue from (status {parent.status})")
    base = continue_config(parent.config, parent.key, parent.config.epochs)
    if problem := continue_problem(parent.config, base.with_overrides(args.set)):  # before the check's own words
        raise CLIError(problem)
    return load_config(args, store, base=base)


def cmd_list(args: argparse.Namespace, store: Store) -> int:
    runs = store.runs()
    if not runs:
        print("no runs yet: python -m nnapp train")
        return 0
    print(f"{'key':16}  {'status':11}  {'test acc':>8}  {'train s':>7}  config")
    for run in runs:
        if run.is_unreadable():
            print(f"{run.key:16}  {run.status:11}  {'-':>8}  {'-':>7}  {printable(run.message)}")
            continue
        acc = f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-"
        secs = f"{run.train_seconds:.1f}" if run.train_seconds is not None else "-"
        print(f"{run.key:16}  {run.status:11}  {acc:>8}  {secs:>7}  {run.config.describe()}  ({run.owner or 'unnamed'})")
    if store.readonly:
        print(f"(the run store {store.home} is read-only)", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    from nnapp.engine.arch import summary_text

    run = find(store, args.key)
    print_run(run)
    print_origin(store.imported(run.key))
    if run.config is None:
        return 0
    if not run.is_unreadable():
        print(summary_text(run.config))
        epochs = store.epochs(run.key)
        if epochs:
            print("train loss: without label smoothing, as validation's; train acc: in training mode (dropout, batch statistics)")
        for e in epochs:
            print(epoch_line(e, run.config.label_smoothing))
    print(json.dumps(run.config.to_dict(), sort_keys=True))
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    from nnapp.bundle.export import export

    run = find(store, args.key)
    if not run.has_weights():
        reason = f"it is unreadable: {run.message}" if run.is_unreadable() else f"status {run.status}"
        raise CLIError(f"run {run.key} has no weights to export ({reason})")
    for path in export(store, run.key, args.to):
        print(path)
    return 0


def cmd_import(args: argparse.Namespace, store: Store) -> int:
    from nnapp.bundle.importer import MAX_BUNDLE, import_bundle

    blob = read_file(args.file, MAX_BUNDLE, "an nnapp bundle")  # what the file holds, not MAX_BUNDLE up front
    run = import_bundle(store, blob)
    print(f"imported {run.key}: {run.config.describe()}")
    print_origin(store.imported(run.key))
    return 0


def print_origin(origin: dict | None) -> None:
    """What an imported run's bundle did not carry, and what import found (its notes)."""
    if origin is None:
        return
    if origin.get("missing"):
        print(f"origin    a bundle of format {origin.get('version')}, without its {', '.join(map(str, origin['missing']))}")
    for note in origin.get("notes") or ():
        print(f"on import {printable(note)}")


def cmd_delete(args: argparse.Namespace, store: Store) -> int:
    run = find(store, args.key)
    if run.is_live():  # a row whose process is gone was marked interrupted when the store opened
        raise CLIError(f"run {run.key} is {run.status} in process {run.pid}; cancel it before deleting it")
    store.delete(run.key)
    print(f"deleted {run.key}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "list": cmd_list,
    "show": cmd_show,
    "export": cmd_export,
    "import": cmd_import,
    "delete": cmd_delete,
}
WRITES = ("train", "import", "delete")  # refused on a read-only store before anything runs
