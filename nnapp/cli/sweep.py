"""`python -m nnapp sweep`: search hyperparameters from the command line, with a line per trial.

This module imports no optuna, torch or ray until a sweep actually runs: `--help` starts without them.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.engine.config import RunConfig
from nnapp.engine.presets import DEFAULT_PRESET, PRESETS
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.sweep.files import journal_path, load_spec, new_name, save_spec, sweep_dir
from nnapp.sweep.spec import NAME, OBJECTIVES, PRUNERS, SAMPLERS, SweepError, SweepSpec, check, parse_param

if TYPE_CHECKING:  # the store (and numpy) load when a command runs, not for --help
    from nnapp.store.store import Store

RAY_ENV = "NNAPP_RAY_ADDRESS"  # where --ray comes from when it is not given
DEFAULTS = {"trials": 20, "parallel": 1, "sampler": "tpe", "pruner": "none", "objective": "val_acc", "seed": 0}
SEARCH = ("param", "set", "sampler", "pruner", "objective", "seed")  # what only a new sweep may choose
EPILOG = """\
--param FIELD=SPEC, repeatable:
  lr=1e-4:1e-1:log          a range on a log scale (integer fields give whole numbers)
  dropout=0:0.5             a range on a linear scale
  batch_size=64,128,256     a list of values
  hidden=64,128,256-128     a list of layer stacks, widths joined by '-'
  conv=16:3:2-32:3:2,32:3:2 a list of conv stacks, channels:kernel:pool blocks joined by '-'

samplers: {samplers}
pruners: {pruners}
The objective is a validation score; the test score of the best trial is shown, never searched on.
Sweeps live in NNAPP_HOME/sweeps/NAME (an Optuna journal); --resume NAME goes on with one.
With --ray ADDRESS (or ${env}) every trial is a task on that Ray cluster."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    def names(table) -> str:
        return "; ".join(f"{name}: {spec.help}" for name, spec in table.items())

    sweep = sub.add_parser(
        "sweep",
        help="search hyperparameters: many runs, one Optuna study",
        epilog=EPILOG.format(samplers=names(SAMPLERS), pruners=names(PRUNERS), env=RAY_ENV),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = sweep.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help=f"the config searched around (default: {DEFAULT_PRESET})")
    source.add_argument("--config", type=Path, help="a JSON file of config fields to search around")
    source.add_argument("--resume", metavar="NAME", help="go on with a stopped, interrupted or finished sweep")
    sweep.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="change the base config; repeatable")
    sweep.add_argument("--param", action="append", default=[], metavar="FIELD=SPEC", help="a field to search; repeatable")
    sweep.add_argument("--trials", type=int, help="trials in all (default 20); with --resume, this many more")
    sweep.add_argument("--parallel", type=int, help="trials at once (default 1); locally each gets cores/N threads")
    sweep.add_argument("--sampler", choices=list(SAMPLERS), help="default: tpe")
    sweep.add_argument("--pruner", choices=list(PRUNERS), help="default: none")
    sweep.add_argument("--objective", choices=list(OBJECTIVES), help="default: val_acc")
    sweep.add_argument("--seed", type=int, help="the sampler's seed (default 0): the same sweep asks for the same configs")
    sweep.add_argument("--name", help="the sweep's name (default: made from the preset, the fields and the time)")
    sweep.add_argument("--ray", metavar="ADDRESS", help=f"run the trials on this Ray cluster (default: ${RAY_ENV}, else locally)")
    sweep.add_argument("--quiet", action="store_true", help="no line per trial")


def new_spec(args: argparse.Namespace, store: Store, base: RunConfig) -> SweepSpec:
    """The sweep the arguments describe, checked, under a fresh name."""
    if not args.param:
        raise SweepError({"--param": "name at least one field to search, e.g. --param lr=1e-4:1e-1:log"})
    params = tuple(parse_param(text) for text in args.param)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    spec = check(SweepSpec("unnamed", base, params, ray=ray_address(args), **{**DEFAULTS, **given}))
    if args.name is None:
        label = args.preset or (args.config.stem if args.config else DEFAULT_PRESET)
        return dataclasses.replace(spec, name=new_name(store.home, label, params))
    if not NAME.match(args.name):
        raise SweepError({"--name": "use letters, digits, '.', '_' and '-' (at most 80, starting with a letter or digit)"})
    if sweep_dir(store.home, args.name).exists():
        raise SweepError({"--name": f"a sweep named {args.name} exists; go on with it with --resume {args.name}"})
    return dataclasses.replace(spec, name=args.name)


def resumed_spec(args: argparse.Namespace, store: Store) -> SweepSpec:
    """The stored sweep, with --trials more trials than it has ended (or its own count), --parallel and --ray."""
    from nnapp.sweep.study import counted, read_study

    changed = [f"--{k}" for k in SEARCH if getattr(args, k) not in (None, [])]
    if changed:
        raise SweepError({"--resume": f"goes on with the sweep's own search; {', '.join(changed)} cannot change it"})
    spec = load_spec(store.home, args.resume)
    study = read_study(store.home, spec.name)
    ended = counted(study.get_trials(deepcopy=False)) if study else 0
    trials = ended + args.trials if args.trials is not None else spec.trials
    return check(dataclasses.replace(spec, trials=trials, parallel=args.parallel or spec.parallel, ray=ray_address(args)))


def ray_address(args: argparse.Namespace) -> str:
    return args.ray if args.ray is not None else os.environ.get(RAY_ENV, "")


def cmd_sweep_args(args: argparse.Namespace, store: Store) -> int:
    from nnapp.cli.common import load_config

    return cmd_sweep(args, store, None if args.resume else load_config(args, store).config)


def cmd_sweep(args: argparse.Namespace, store: Store, base: RunConfig | None) -> int:
    """Run the sweep here, as its driver; the Sweep page sees it (and its Stop reaches it) through the store."""
    from nnapp.store.stops import stop_file
    from nnapp.tasks.run import run_task

    spec = resumed_spec(args, store) if args.resume else new_spec(args, store, base)
    save_spec(store.home, spec)
    claim = store.tasks.claim(TaskKind.SWEEP, spec.key, spec.to_dict(), force=True)
    if claim.state == ClaimState.ATTACHED:
        raise SweepError({"--resume": f"the sweep {spec.name} is running in another process; stop it there first"})
    print(f"sweep {spec.name}: {spec.trials} trials around {spec.base.describe()}; {spec.describe()}", file=sys.stderr)
    stop = stop_file(store, spec.key)
    stop.clear()
    lines = _trial_lines(args.quiet)
    try:
        status = run_task(TaskKind.SWEEP, spec.key, spec.to_dict(), store, should_stop=stop.is_set)
    except KeyboardInterrupt:
        store.tasks.set(spec.key, status=Status.CANCELLED, message="interrupted from the keyboard")
        raise
    finally:
        stop.clear()
        logging.getLogger("nnapp.sweep").removeHandler(lines)
    print_summary(store, spec, status)
    return 0 if status == Status.DONE else 1


def _trial_lines(quiet: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout) if not quiet else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("nnapp.sweep")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def print_summary(store: Store, spec: SweepSpec, status: str) -> None:
    task = store.tasks.get(spec.key)
    result = (task.result if task else None) or {}
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(result.get("statuses", {}).items()))
    print(f"sweep     {spec.name}  [{status}]  {result.get('counted', 0)} of {spec.trials} trials ended ({statuses or 'none'})")
    best = result.get("best")
    if best:
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        print(f"best      trial {best['number']}: {spec.objective} {best['value']:.4f}  {params}")
        test = f"{best['test_accuracy'] * 100:.2f}%" if best.get("test_accuracy") is not None else "-"
        print(f"run       {best['key']}  test accuracy {test} (shown, not searched on: selecting on it would overfit it)")
    print(f"journal   {journal_path(store.home, spec.name)}")
    print(f"more      python -m nnapp sweep --resume {spec.name} --trials 10")


COMMANDS = {"sweep": cmd_sweep_args}
WRITES = ("sweep",)
