"""A sweep as the Sweep page shows it: its trials as table rows (live ones read from the store) and Optuna's figures.

Reads the journal and the store; writes nothing. Plain data in, plain rows and Plotly figures out.
"""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from nnapp.engine.states import ICONS, Status
from nnapp.store.store import Store
from nnapp.sweep.spec import OBJECTIVES, SweepSpec
from nnapp.sweep.study import best_trial, counted, target, trial_run

STATES = {TrialState.RUNNING: Status.RUNNING, TrialState.WAITING: "waiting"}  # trials without a recorded end
HEIGHT = 360


def trial_rows(study: optuna.Study, store: Store, spec: SweepSpec) -> list[dict]:
    """One row per trial: status, the searched values, the validation score, epochs, time, where it came from."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        info = trial_run(t)
        key = info.get("key") or t.user_attrs.get("key")
        status = info.get("status") or STATES.get(t.state, t.state.name.lower())
        params = t.params or t.system_attrs.get("fixed_params", {})  # a waiting trial has only what it was given
        row = {"trial": t.number, "status": f"{ICONS.get(status, '·')} {status}"}
        row.update({p.field: params.get(p.field) for p in spec.params})
        row.update({spec.objective: t.value, "epochs": None, "seconds": info.get("seconds"), "pruned at": info.get("pruned_at")})
        row.update({"source": info.get("source"), "key": key})
        if key:
            _add_run(row, store, key, spec.objective)
        rows.append(row)
    return rows


def _add_run(row: dict, store: Store, key: str, objective: str) -> None:
    """Epochs so far (and, while it trains, its latest score and time) from the run itself."""
    run, epochs = store.get(key), store.epochs(key)
    if run is None:
        return
    row["epochs"] = f"{len(epochs)}/{run.config.epochs}"
    if run.is_active():
        row["seconds"] = (run.progress or {}).get("elapsed")
        if epochs:
            row[objective] = epochs[-1][objective]


def progress(study: optuna.Study | None, spec: SweepSpec) -> tuple[int, int]:
    """(trials ended that count, the sweep's target)."""
    return (counted(study.get_trials(deepcopy=False)) if study else 0), target(spec)


def best(study: optuna.Study, store: Store) -> dict | None:
    """The best trial so far: its number, score, values and run (whose test score the page shows, never searches on)."""
    trial = best_trial(study)
    if trial is None:
        return None
    run = store.get(trial_run(trial).get("key", ""))
    return {"number": trial.number, "value": trial.value, "params": trial.params, "run": run}


def figures(study: optuna.Study, spec: SweepSpec) -> dict[str, go.Figure]:
    """Optuna's own figures, where there are enough finished trials for them: best so far, parallel
    coordinates of the searched values, and how much each value mattered."""
    import optuna.visualization as vis

    name = OBJECTIVES[spec.objective].title
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    out: dict[str, go.Figure] = {}
    if complete:
        out["Best so far"] = vis.plot_optimization_history(study, target_name=name)
    if len(complete) >= 2:
        out["Parallel coordinates"] = vis.plot_parallel_coordinate(study, target_name=name)
        varied = [p.field for p in spec.params if len({repr(t.params.get(p.field)) for t in complete}) > 1]
        if varied:
            out["Importance"] = vis.plot_param_importances(study, params=varied, target_name=name)
    for fig in out.values():
        fig.update_layout(height=HEIGHT, margin=dict(l=10, r=10, t=40, b=10))
    return out
