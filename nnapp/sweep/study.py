"""A sweep's Optuna study in its journal: samplers and pruners, opening and reading it, and what its trials say.

The driver (nnapp.sweep) alone writes the journal; the page, the CLI's summary and the tests read it.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from nnapp.engine.registry import resolve
from nnapp.engine.states import Status
from nnapp.store.store import Store
from nnapp.sweep.files import journal_path
from nnapp.sweep.spec import OBJECTIVES, PRUNERS, SAMPLERS, SweepError, SweepSpec
from nnapp.system.files import check_regular, os_error_text

MAX_JOURNAL = 1 << 30  # bytes of a sweep's journal: thousands of trials take a few megabytes

SLOT = "slot"  # a trial's user attr: its position among the sweep's asks (slot_of)

# --- samplers and pruners (the builders SAMPLERS and PRUNERS name) ---------------------------------------------
# Each trial's sampler is built afresh, seeded from the sweep's seed and the trial's position (nnapp.sweep.view),
# so what a trial draws never depends on how many draws came before it in this process.


def slot_seed(seed: int, slot: int) -> int:
    """The seed of trial `slot`'s sampler: distinct streams for every (seed, slot), in what Optuna accepts."""
    return int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])


@functools.lru_cache(maxsize=4)
def _grid(spec: SweepSpec) -> optuna.samplers.GridSampler:
    # Optuna expands every point of the grid when it is made: once per sweep (its size is checked before)
    return optuna.samplers.GridSampler({p.field: list(p.choices) for p in spec.params}, seed=spec.seed)


def grid_sampler(spec: SweepSpec, slot: int) -> optuna.samplers.BaseSampler:
    # trial k of the grid is its k-th point in the seeded shuffled order: Optuna gives trial number k grid point k
    return _grid(spec)


def random_sampler(spec: SweepSpec, slot: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=slot_seed(spec.seed, slot))


def tpe_sampler(spec: SweepSpec, slot: int) -> optuna.samplers.BaseSampler:
    # constant_liar: trials still running count as bad guesses, so parallel trials spread out
    startup = min(10, max(3, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=slot_seed(spec.seed, slot), n_startup_trials=startup, constant_liar=True)


def no_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def median_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def asha_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


# --- the study in its journal ---------------------------------------------------------------------------------


def journal(path: Path) -> JournalStorage:
    if path.exists():  # the driver's too: Optuna would read a FIFO or a device in its place for ever
        check_regular(path, MAX_JOURNAL)
    return JournalStorage(JournalFileBackend(str(path)))


def open_study(spec: SweepSpec, home: Path) -> optuna.Study:
    """The sweep's study, created on first use. It records the trials; what each is asked and whether it is
    pruned is decided in its view (nnapp.sweep.view), so its own sampler only hands out the values given."""
    path = journal_path(home, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(
        study_name=spec.name,
        storage=journal(path),
        direction=OBJECTIVES[spec.objective].direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        load_if_exists=True,
    )


def sampler(spec: SweepSpec, slot: int) -> optuna.samplers.BaseSampler:
    return resolve(SAMPLERS[spec.sampler].build)(spec, slot)


def pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    return resolve(PRUNERS[spec.pruner].build)(spec)


def read_study(home: Path, name: str) -> optuna.Study | None:
    """The sweep's study to read (the page, the CLI's summary); None before its driver has started it.
    A journal that cannot be read (not a regular file, damaged) is a SweepError of one sentence."""
    path = journal_path(home, name)
    if not path.exists():
        return None
    try:
        if not check_regular(path, MAX_JOURNAL).st_size:  # Optuna opens it itself: a FIFO or /dev/zero would hang it
            return None
        return optuna.load_study(study_name=name, storage=journal(path))
    except Exception as err:  # Optuna's readers raise KeyError, ValueError, UnicodeDecodeError... on a damaged line
        reason = os_error_text(err, path) if isinstance(err, OSError) else f"{type(err).__name__}: {str(err)[:100]}"
        raise SweepError({"--resume": f"the journal of sweep {name} cannot be read ({reason})"}) from None


def slot_of(t: FrozenTrial) -> int:
    """A trial's position k among the sweep's asks: a cancelled trial asked again keeps its own."""
    return t.user_attrs.get(SLOT, t.number)


def trial_run(t: FrozenTrial) -> dict:
    """What the driver recorded of a trial's run: status, source, key, seconds, message, pruned_at, node."""
    return t.user_attrs.get("run", {})


def counted(trials: list[FrozenTrial]) -> int:
    """Trials that count towards the sweep's total: ended ones, but not those cancelled or interrupted."""
    return sum(1 for t in trials if t.state.is_finished() and trial_run(t).get("status") not in (None, *Status.stopped()))


def target(spec: SweepSpec) -> int:
    """Trials that count towards the sweep's end: its count, or the grid's size when that is smaller."""
    return min(spec.trials, spec.grid_size() or spec.trials)


def to_go(spec: SweepSpec, home: Path) -> int:
    """Trials the sweep has still to end (at least one): no more are ever run at once."""
    study = read_study(home, spec.name)
    return max(1, target(spec) - (counted(study.get_trials(deepcopy=False)) if study else 0))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no completed trial yet
        return None


def objective_value(epochs: list[dict], objective: str, patience: int) -> float | None:
    """The score of the weights a run keeps: its last epoch's, or with early stopping its best epoch's."""
    rows = [e for e in epochs if finite(e.get(objective))]
    if not rows:
        return None
    return (min(rows, key=lambda e: e["val_loss"]) if patience else rows[-1])[objective]


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def requeue(study: optuna.Study) -> None:
    """Trials a dead driver left running end as failed and are asked again first (by now maybe a cache hit)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={SLOT: slot_of(t)})


def summary(study: optuna.Study, store: Store) -> dict:
    """The sweep's result: its trials by status, and the best trial with its run's test score (shown, never searched on)."""
    trials = study.get_trials(deepcopy=False)
    statuses = Counter(trial_run(t).get("status") or t.state.name.lower() for t in trials)
    out: dict[str, Any] = {"trials": len(trials), "counted": counted(trials), "statuses": dict(statuses)}
    best = best_trial(study)
    if best is not None:
        run = store.get(trial_run(best).get("key", ""))
        out["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "key": trial_run(best).get("key"),
            "test_accuracy": run.accuracy if run else None,
        }
    return out
