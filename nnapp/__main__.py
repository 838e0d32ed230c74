"""`python -m nnapp train|sweep|list|show|export`: the engine without the browser."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nnapp.config import ConfigError, RunConfig, choices_help
from nnapp.errors import DataError, StoreError
from nnapp.presets import DEFAULT_PRESET, PRESETS
from nnapp.records import Claim, Run
from nnapp.store import Store
from nnapp.sweep_cli import add_parser as add_sweep_parser
from nnapp.sweep_spec import SweepError


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise CLIError(message)


def build_parser() -> Parser:
    parser = Parser(prog="python -m nnapp", description="Train, sweep, list, show and export nnapp runs.")
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
    add_sweep_parser(sub)
    sub.add_parser("list", help="list stored runs")
    show = sub.add_parser("show", help="show one run")
    show.add_argument("key", help="a run key or an unambiguous prefix")
    exp = sub.add_parser("export", help="write config, weights, TorchScript and metrics of a run")
    exp.add_argument("key")
    exp.add_argument("--to", type=Path, required=True, metavar="DIR")
    return parser


def load_config(args: argparse.Namespace) -> RunConfig:
    if args.config:
        try:
            data = json.loads(args.config.read_text())
        except OSError as err:
            raise CLIError(f"cannot read {args.config}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise CLIError(f"{args.config} is not valid JSON: {err.msg} (line {err.lineno})") from None
        config = RunConfig.from_dict(data)
    else:
        config = PRESETS[args.preset or DEFAULT_PRESET]
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
    print(f"config    {run.config.describe()}")
    if run.device:
        print(f"device    {run.device} ({run.precision})")
    if run.train_seconds is not None:
        print(f"training  {run.train_seconds:.1f}s")
    if run.test:
        print(f"test      accuracy {run.test['accuracy'] * 100:.2f}%  loss {run.test['loss']:.4f}")
    if run.message:
        print(f"note      {run.message}")


def cmd_list(store: Store) -> int:
    runs = store.runs()
    if not runs:
        print("no runs yet: python -m nnapp train")
        return 0
    print(f"{'key':16}  {'status':11}  {'test acc':>8}  {'train s':>7}  config")
    for run in runs:
        acc = f"{run.accuracy * 100:.2f}%" if run.accuracy is not None else "-"
        secs = f"{run.train_seconds:.1f}" if run.train_seconds is not None else "-"
        print(f"{run.key:16}  {run.status:11}  {acc:>8}  {secs:>7}  {run.config.describe()}")
    return 0


def find(store: Store, prefix: str):
    run = store.find(prefix)
    if run is None:
        raise CLIError(f"no single run matches {prefix!r}; see python -m nnapp list")
    return run


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    from nnapp.arch import summary_text

    run = find(store, args.key)
    print_run(run)
    print(summary_text(run.config))
    for e in store.epochs(run.key):
        print(
            f"epoch {e['epoch']:3}: train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f} | val loss {e['val_loss']:.4f} acc {e['val_acc']:.4f}"
        )
    print(json.dumps(run.config.to_dict(), sort_keys=True))
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    from nnapp.export import export

    run = find(store, args.key)
    if not run.has_weights():
        raise CLIError(f"run {run.key} has no weights to export (status {run.status})")
    for path in export(store, run.key, args.to):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        store = Store()
        if args.command == "train":
            return cmd_train(args, store)
        if args.command == "sweep":
            from nnapp.sweep_cli import cmd_sweep

            return cmd_sweep(args, store, None if args.resume else load_config(args))
        if args.command == "list":
            return cmd_list(store)
        if args.command == "show":
            return cmd_show(args, store)
        return cmd_export(args, store)
    except CLIError as err:
        print(f"nnapp: error: {err}", file=sys.stderr)
        return 2
    except SweepError as err:  # before ConfigError, which it is: it names the sweep's part at fault
        print(f"nnapp: error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"nnapp: error: invalid config: {err}", file=sys.stderr)
        return 2
    except (DataError, StoreError) as err:
        print(f"nnapp: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nnnapp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
