"""What the CLI's commands share: one-line errors, how a command names its config, and how a run prints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.engine import datasets
from nnapp.engine.checks import Checked, checked
from nnapp.engine.config import RunConfig
from nnapp.engine.fields import loads
from nnapp.engine.presets import DEFAULT_PRESET, PRESETS, small_data
from nnapp.engine.records import Run
from nnapp.store.comparable import number
from nnapp.system.files import UnreadableFile, os_error_text, read_regular

if TYPE_CHECKING:  # the store (and numpy) load when a command runs, not for --help
    from nnapp.store.store import Store

MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; anything near this is not one


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise CLIError(message)


def config_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset or --config, then --set overrides: how a command names its config."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help=f"a named config (default: {DEFAULT_PRESET})")
    source.add_argument("--config", type=Path, help="a JSON file of config fields")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one field; repeatable")


def read_config_file(path: Path) -> RunConfig:
    """A --config file: UTF-8 JSON of config fields, at most 1 MiB."""
    raw = read_file(path, MAX_CONFIG_BYTES, "a config file")
    try:
        data = loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise CLIError(f"{path} is not UTF-8 text (byte {err.start} cannot be read)") from None
    except json.JSONDecodeError as err:
        raise CLIError(f"{path} is not valid JSON: {err.msg} (line {err.lineno})") from None
    except ValueError as err:
        raise CLIError(f"{path} is not a config: {err}") from None
    return RunConfig.from_dict(data)


def read_file(path: Path, limit: int, what: str) -> bytes:
    """A file the command line names, read whole: a regular file of at most `limit` bytes, or a CLIError
    that says why not (a folder, a FIFO or a device is refused before anything is read)."""
    try:
        return read_regular(path, limit)
    except UnreadableFile as err:
        if "larger than" in err.strerror:
            raise CLIError(f"{path} is too large for {what}: {err.strerror}") from None
        raise CLIError(f"{path} is not {what}: {err.strerror}") from None
    except OSError as err:
        raise CLIError(f"cannot read {os_error_text(err, path)}") from None


def load_config(args: argparse.Namespace, store: Store | None = None, base: RunConfig | None = None) -> Checked:
    """The config the arguments name, checked (ConfigError when it cannot be trained here; with `store`, also
    when the run its init_from names is not there to start from). A data set of
    yours named by its name is its current version in `store`; without --preset or --config it starts from
    the small-data preset. `base`: the config --set changes instead (a run being continued)."""
    config = base or (read_config_file(args.config) if args.config else PRESETS[args.preset or DEFAULT_PRESET])
    config = config.with_overrides(args.set)
    ref = own_ref(store, config.dataset)
    if ref is not None and base is None and not args.config and not args.preset:
        config = small_data(ref).with_overrides([s for s in args.set if not s.strip().startswith("dataset")])
    return checked(config.replace(dataset=ref) if ref else config, store.get if store is not None else None)


def own_ref(store: Store | None, dataset: str) -> str | None:
    """NAME@VERSION of the current version of data set `dataset` of yours, when it names one by its name."""
    if store is None or datasets.is_ref(dataset) or dataset in datasets.DATASETS:
        return None
    found = store.data_set(dataset)
    return found.ref if found is not None else None


def find(store: Store, prefix: str) -> Run:
    if len(prefix) > 16:  # a key is 16 hex digits: a longer prefix names no run, however long the search
        raise CLIError(f"a run key is 16 hex digits; {prefix[:20]!r}… ({len(prefix):,} characters) is too long")
    run = store.find(prefix)
    if run is None:
        raise CLIError(f"no single run matches {prefix[:40]!r}; see python -m nnapp list")
    return run


def printable(text: object) -> str:
    """Text from a store, a bundle or another person as a terminal shows it safely: control characters (escape
    sequences, line breaks, a right-to-left override) written as escapes, one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def print_run(run: Run) -> None:
    print(f"run       {run.key}  [{run.status}]")
    if run.is_unreadable():
        print(f"problem   {printable(run.message)}")
        print(f"          delete it with: python -m nnapp delete {run.key}")
        return
    print(f"config    {run.config.describe()}")
    print(f"by        {run.owner or 'unnamed (launched before names were kept)'}")
    if run.device:
        print(f"device    {printable(run.device)} ({printable(run.precision)})")
    if run.train_seconds is not None:
        print(f"training  {run.train_seconds:.1f}s")
    if run.test:
        print(f"test      accuracy {run.test['accuracy'] * 100:.2f}%  loss {number(run.test['loss'])}")
    if run.message:
        print(f"note      {printable(run.message)}")
