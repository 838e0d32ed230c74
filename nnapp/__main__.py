"""`python -m nnapp train|list|show|predict|export|import|delete`: the engine without the browser."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nnapp.config import ConfigError, RunConfig, choices_help
from nnapp.database import READ_ONLY
from nnapp.errors import BundleError, DataError, StoreError
from nnapp.fields import loads
from nnapp.files import os_error_text
from nnapp.presets import DEFAULT_PRESET, PRESETS
from nnapp.records import Claim, Run
from nnapp.store import Store


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise CLIError(message)


def build_parser() -> Parser:
    parser = Parser(prog="python -m nnapp", description="Train, list, show, try, export, import and delete nnapp runs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train = sub.add_parser(
        "train",
        help="train a config, or show its stored run",
        epilog="choices: " + choices_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help=f"a named config (default: {DEFAULT_PRESET})")
    source.add_argument("--config", type=Path, help="a JSON file of config fields")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one field; repeatable")
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
    pred = sub.add_parser("predict", help="read digits from PNG or JPEG images, or say they are not digits")
    pred.add_argument("key", help="a run key or an unambiguous prefix")
    pred.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    return parser


MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; anything near this is not one


def read_config_file(path: Path) -> RunConfig:
    """A --config file: UTF-8 JSON of config fields, at most 1 MiB."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise CLIError(f"cannot read {path}: {err.strerror or err}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise CLIError(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config file")
    try:
        data = loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise CLIError(f"{path} is not UTF-8 text (byte {err.start} cannot be read)") from None
    except json.JSONDecodeError as err:
        raise CLIError(f"{path} is not valid JSON: {err.msg} (line {err.lineno})") from None
    except ValueError as err:
        raise CLIError(f"{path} is not a config: {err}") from None
    return RunConfig.from_dict(data)


def load_config(args: argparse.Namespace) -> RunConfig:
    config = read_config_file(args.config) if args.config else PRESETS[args.preset or DEFAULT_PRESET]
    config = config.with_overrides(args.set)
    problems = config.validate()
    if problems:
        raise ConfigError(problems)
    return config


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
            e = p.epoch_row
            line = f"\repoch {e['epoch']}: train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f} | val loss {e['val_loss']:.4f} acc {e['val_acc']:.4f} | {e['seconds']:.1f}s"
            self.stream.write(line.ljust(110) + "\n")
        else:
            self.stream.write(line)
        self.stream.flush()


def cmd_train(args: argparse.Namespace, store: Store) -> int:
    # torch is imported here, not at the top: list, show and --help start without it
    from nnapp.device import device_label, set_threads, training_threads
    from nnapp.runs import train_or_load

    config = load_config(args)
    set_threads(training_threads())
    claims = []

    def announce(claim: Claim) -> None:
        claims.append(claim)
        if claim.state == "claimed":
            what = "retraining" if claim.key != config.key() else "training"
            print(f"{what} {config.key()} on {device_label()}: {config.describe()}", file=sys.stderr)
        elif claim.state == "attached":
            print(f"following {claim.key}: another process is training this config", file=sys.stderr)

    started = time.perf_counter()
    run = train_or_load(config, store, force=args.force, on_progress=None if args.quiet else ProgressBar(), on_claim=announce)
    took = time.perf_counter() - started
    cached = claims[0].state == "cached"
    if not cached and not args.quiet:
        print(file=sys.stderr)  # end the progress bar's line
    if cached:
        print(f"loaded from cache in {took:.3f}s")
    print_run(run)
    if run.is_retrain():
        print("note      the retrain did not finish; the stored run is unchanged")
    return 0 if run.status == "done" else 1


def print_run(run: Run) -> None:
    print(f"run       {run.key}  [{run.status}]")
    if run.is_unreadable():
        print(f"problem   {run.message}")
        print(f"          delete it with: python -m nnapp delete {run.key}")
        return
    print(f"config    {run.config.describe()}")
    if run.device:
        print(f"device    {run.device} ({run.precision})")
    if run.train_seconds is not None:
        print(f"training  {run.train_seconds:.1f}s")
    if run.test:
        print(f"test      accuracy {run.test['accuracy'] * 100:.2f}%  loss {number(run.test['loss'])}")
    if run.message:
        print(f"note      {run.message}")


def number(value, spec: str = ".4f") -> str:
    """A metric as text; '-' for a missing one (a NaN loss is stored as nothing)."""
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def cmd_list(store: Store) -> int:
    runs = store.runs()
    if not runs:
        print("no runs yet: python -m nnapp train")
        return 0
    print(f"{'key':16}  {'status':11}  {'test acc':>8}  {'train s':>7}  config")
    for run in runs:
        if run.is_unreadable():
            print(f"{run.key:16}  {run.status:11}  {'-':>8}  {'-':>7}  {run.message}")
            continue
        acc = f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-"
        secs = f"{run.train_seconds:.1f}" if run.train_seconds is not None else "-"
        print(f"{run.key:16}  {run.status:11}  {acc:>8}  {secs:>7}  {run.config.describe()}")
    if store.readonly:
        print(f"(the run store {store.home} is read-only)", file=sys.stderr)
    return 0


def find(store: Store, prefix: str):
    run = store.find(prefix)
    if run is None:
        raise CLIError(f"no single run matches {prefix[:40]!r}; see python -m nnapp list")
    return run


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    from nnapp.arch import summary_text

    run = find(store, args.key)
    print_run(run)
    if run.config is None:
        return 0
    if not run.is_unreadable():
        print(summary_text(run.config))
        for e in store.epochs(run.key):
            print(
                f"epoch {number(e['epoch'], '3')}: train loss {number(e['train_loss'])} acc {number(e['train_acc'])}"
                f" | val loss {number(e['val_loss'])} acc {number(e['val_acc'])}"
            )
    print(json.dumps(run.config.to_dict(), sort_keys=True))
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    from nnapp.export import export

    run = find(store, args.key)
    if not run.has_weights():
        reason = f"it is unreadable: {run.message}" if run.is_unreadable() else f"status {run.status}"
        raise CLIError(f"run {run.key} has no weights to export ({reason})")
    for path in export(store, run.key, args.to):
        print(path)
    return 0


def read_images(paths: list[Path]) -> list:
    """Every image decoded before anything is predicted, so a bad file costs no work."""
    from nnapp.predict import ImageError, load_image

    images = []
    for path in paths:
        try:
            images.append(load_image(path.read_bytes()))
        except OSError as err:
            raise CLIError(f"cannot read {path}: {err.strerror}") from None
        except ImageError as err:
            raise CLIError(f"{path}: {err}") from None
    return images


def cmd_predict(args: argparse.Namespace, store: Store) -> int:
    from nnapp import ood
    from nnapp.device import set_threads
    from nnapp.predict import for_inference, preprocess

    run = find(store, args.key)
    if not run.has_weights():
        raise CLIError(f"run {run.key} has no weights to predict with (status {run.status})")
    images = read_images(args.images)
    if ood.available(run.config) and ood.load_stats(store, run.key) is None:
        print(f"making the not-a-digit check of run {run.key[:8]} (once per run, a few seconds)", file=sys.stderr)
    stats = ood.ensure(store, run.key)
    set_threads(1)  # one digit at a time: one thread is the fastest
    model = for_inference(store.load_model(run.key)[0])
    names = run.config.data_spec().classes
    for path, image in zip(args.images, images, strict=True):
        stages = preprocess(image)
        if stages is None:
            print(f"{path}: empty (no ink)")
            continue
        v = ood.judge(model, stages.digit, stats)
        guess = f"probability {v.probabilities[v.digit]:.1%}"
        check = f"not-a-digit score {v.score:.2f}, threshold {v.threshold:.2f}" if stats else "no not-a-digit check"
        answer = names[v.digit] if v.is_digit else f"not a digit (best guess {names[v.digit]})"
        print(f"{path}: {answer}  [{guess}; {check}]")
    return 0


def cmd_import(args: argparse.Namespace, store: Store) -> int:
    from nnapp.importer import MAX_BUNDLE, import_bundle

    try:
        if args.file.is_dir() or not args.file.is_file():  # a folder, a device such as /dev/zero, nothing at all
            raise CLIError(f"{args.file} is not a file")
        with args.file.open("rb") as f:
            blob = f.read(MAX_BUNDLE + 1)
    except OSError as err:
        raise CLIError(f"cannot read {os_error_text(err)}") from None
    if len(blob) > MAX_BUNDLE:
        raise CLIError(f"{args.file} is larger than {MAX_BUNDLE >> 20} MiB: not an nnapp bundle")
    run = import_bundle(store, blob)
    print(f"imported {run.key}: {run.config.describe()}")
    return 0


def cmd_delete(args: argparse.Namespace, store: Store) -> int:
    run = find(store, args.key)
    if run.is_active():
        raise CLIError(f"run {run.key} is {run.status} in process {run.pid}; cancel it before deleting it")
    store.delete(run.key)
    print(f"deleted {run.key}")
    return 0


COMMANDS = {
    "list": lambda args, store: cmd_list(store),
    "show": cmd_show,
    "predict": cmd_predict,
    "export": cmd_export,
    "import": cmd_import,
    "delete": cmd_delete,
}


def main(argv: list[str] | None = None) -> int:
    args = None
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # a file name that is not UTF-8 prints, escaped
    try:
        args = build_parser().parse_args(argv)
        store = Store()
        if store.readonly and args.command in ("train", "import", "delete"):
            raise StoreError(f"the run store {store.home} {READ_ONLY}")
        if args.command == "train":
            return cmd_train(args, store)
        return COMMANDS[args.command](args, store)
    except CLIError as err:
        return fail(str(err))
    except ConfigError as err:
        return fail(f"invalid config: {err}")
    except (DataError, StoreError, BundleError) as err:
        return fail(str(err))
    except OSError as err:
        return fail(f"cannot {getattr(args, 'command', 'start')}: {os_error_text(err)}")
    except MemoryError:
        return fail("out of memory; try a smaller network or batch")
    except KeyboardInterrupt:
        print("\nnnapp: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line, as every error; NNAPP_DEBUG=1 shows the traceback
        if os.environ.get("NNAPP_DEBUG"):
            raise
        return fail(f"unexpected {type(err).__name__}: {str(err)[:200]} (NNAPP_DEBUG=1 shows where)", status=1)


def fail(message: str, status: int = 2) -> int:
    print(f"nnapp: error: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    from nnapp.process import exit_now

    exit_now(main())
