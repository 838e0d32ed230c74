"""Where a sweep lives: home/sweeps/NAME/ holds sweep.json (what it searches), journal.log (its Optuna trials,
written by its driver alone) and, while trials train locally, verdicts/ (the driver's pruning answers).

No optuna import: the CLI and the Sweep page list, name and load sweeps without it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from nnapp.engine.fields import loads
from nnapp.store.weights import atomic_write
from nnapp.sweep.spec import NAME, Param, SweepError, SweepSpec
from nnapp.system.files import os_error_text, read_regular

MAX_SPEC = 1 << 20  # bytes of a sweep.json: a config and a few params are a few hundred


def sweep_dir(home: Path, name: str) -> Path:
    return Path(home) / "sweeps" / name


def journal_path(home: Path, name: str) -> Path:
    """The Optuna journal: the sweep's trials, written by its driver alone."""
    return sweep_dir(home, name) / "journal.log"


def verdict_path(folder: Path | str, key: str, epoch: int) -> Path:
    """Where a local driver answers a trial's pruning question after `epoch`: 'prune' or 'go'."""
    return Path(folder) / f"{key}.{epoch}"


def save_spec(home: Path, spec: SweepSpec) -> None:
    folder = sweep_dir(home, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "sweep.json", json.dumps(spec.to_dict(), indent=1).encode())


def load_spec(home: Path, name: str) -> SweepSpec:
    """The sweep saved under `name`; a SweepError that says so in one sentence when there is none or its
    sweep.json cannot be read (not a regular file, not JSON, not a sweep nnapp wrote)."""
    path = sweep_dir(home, name) / "sweep.json"
    if not NAME.match(name) or not path.exists():
        known = ", ".join(sweep_names(home)[:5]) or "none yet"
        raise SweepError({"--resume": f"no sweep named {name!r} (latest: {known})"})
    try:
        return SweepSpec.from_dict(loads(read_regular(path, MAX_SPEC).decode("utf-8")))
    except OSError as err:
        reason = os_error_text(err, path)
    except UnicodeDecodeError:
        reason = f"{path} is not UTF-8 text"
    except ValueError as err:  # not JSON, or a config or param that does not read (SweepError, ConfigError)
        reason = f"{path} is not a sweep nnapp can read ({str(err)[:120]})"
    except (TypeError, KeyError, AttributeError) as err:  # JSON of another shape
        reason = f"{path} is not a sweep nnapp wrote ({type(err).__name__}: {str(err)[:80]})"
    raise SweepError({"--resume": f"the sweep {name} is damaged: {reason}"})


def sweep_names(home: Path) -> list[str]:
    """Every sweep under the store's home, newest first."""
    paths = (Path(home) / "sweeps").glob("*/sweep.json")
    return [p.parent.name for p in sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True)]


def new_name(home: Path, label: str, params: tuple[Param, ...]) -> str:
    """A readable name, reserved by creating its folder: 'fast-lr-batch_size-261129-0412' (-2, -3… in one minute)."""
    stem = "-".join([re.sub(r"[^A-Za-z0-9_.-]", "", label) or "custom", *(p.field for p in params)])[:60]
    name = f"{stem}-{time.strftime('%y%m%d-%H%M')}"
    for n in range(1, 1000):
        candidate = name if n == 1 else f"{name}-{n}"
        try:
            sweep_dir(home, candidate).mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise SweepError({"--name": f"every name from {name} on is taken; choose one with --name"})
