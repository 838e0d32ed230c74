"""What each trial is asked, and whether it is pruned, decided from a view that no timing changes.

Trial k of a sweep run `parallel` at a time (k counts the sweep's asks: a cancelled trial asked again keeps its
k) is decided in an in-memory Optuna study that holds trials 0 … k-parallel as they ended, with their scores,
and trials k-parallel+1 … k-1 as still running (the constant liar), however many of those have really ended
by then. The driver asks trial k only once trials 0 … k-parallel have ended, and its sampler is seeded from
the sweep's seed and k (study.slot_seed). So the same sweep asks for the same configs and prunes them at the
same epochs, one at a time or in parallel, on this machine or a Ray cluster, and a repeat is replayed from
the store. What the sampler and the pruner note on a trial (ASHA's rungs) is kept in its user attrs.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from nnapp.sweep.spec import KINDS, OBJECTIVES, Param, SweepSpec
from nnapp.sweep.study import SLOT, pruner, sampler, slot_of

NOTED = "noted"  # a trial's user attr: what the pruner noted on it in its view (ASHA's rungs), when it ended
ASKED = "asked"  # a twin's user attr: the system attrs it had once asked (the sampler's notes, its given values)
FIXED = "fixed_params"  # Optuna's system attr: the values an enqueued trial was given


def distribution(param: Param) -> BaseDistribution:
    """The distribution Param.suggest asks Optuna for."""
    if param.low is None:
        return CategoricalDistribution(list(param.choices))
    if KINDS[param.field] is int:
        return IntDistribution(int(param.low), int(param.high), log=param.log)
    return FloatDistribution(param.low, param.high, log=param.log)


def next_slot(trials: list[FrozenTrial]) -> int:
    """The position of the sweep's next new ask."""
    asked = [slot_of(t) for t in trials if t.state != TrialState.WAITING or SLOT in t.user_attrs]
    return max(asked, default=-1) + 1


def latest(trials: list[FrozenTrial]) -> dict[int, FrozenTrial]:
    """Each position's latest attempt (a stopped trial is asked again under its position)."""
    return {slot_of(t): t for t in sorted(trials, key=lambda t: t.number)}


def values(t: FrozenTrial) -> dict[str, Any]:
    return t.params or t.system_attrs.get(FIXED, {})


def copy(t: FrozenTrial | None, dists: dict[str, BaseDistribution], ended: bool) -> FrozenTrial:
    """`t` as the view shows it: ended, with its score, steps and notes; or running, with its values alone.
    A position without a trial, or with values outside the search, is a failed trial nobody reads."""
    params = values(t) if t is not None else {}
    try:
        if t is None or set(params) != set(dists):
            raise ValueError("no values of this search")
        if not ended:
            return create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
        return create_trial(
            state=t.state,
            value=t.value if t.state == TrialState.COMPLETE else None,
            params=params,
            distributions=dists,
            intermediate_values=dict(t.intermediate_values),
            system_attrs=dict(t.user_attrs.get(NOTED, {})),
        )
    except ValueError:
        return create_trial(state=TrialState.FAIL)


def view(spec: SweepSpec, trials: list[FrozenTrial], slot: int, busy: bool) -> optuna.Study | None:
    """The study trial `slot` is decided in. None while one of the trials it must see as ended is still on
    its way and other trials are live (with none live, it is seen as running rather than waited for)."""
    attempts, dists = latest(trials), {p.field: distribution(p) for p in spec.params}
    ended_by = slot - spec.parallel + 1  # positions below this are seen as ended
    shown = []
    for k in range(slot):
        t = attempts.get(k)
        ended = k < ended_by and t is not None and t.state.is_finished()
        if k < ended_by and t is not None and not ended and busy:
            return None
        shown.append(copy(t, dists, ended))
    direction = OBJECTIVES[spec.objective].direction
    study = optuna.create_study(direction=direction, sampler=sampler(spec, slot), pruner=pruner(spec))
    study.add_trials(shown)
    return study


def ask(study: optuna.Study, spec: SweepSpec, busy: bool) -> tuple[optuna.Trial, optuna.Trial] | None:
    """The sweep's next trial and its twin in its view (which decides its pruning); a cancelled or
    interrupted trial waiting to be asked again comes first. None while it has to wait (see view)."""
    trials = study.get_trials(deepcopy=False)
    waiting = next((t for t in trials if t.state == TrialState.WAITING), None)
    slot = waiting.user_attrs.get(SLOT, next_slot(trials)) if waiting else next_slot(trials)
    decider = view(spec, trials, slot, busy)
    if decider is None:
        return None
    if waiting is not None:
        decider.enqueue_trial(values(waiting))
    twin = decider.ask()
    given = {p.field: p.suggest(twin) for p in spec.params}
    twin.set_user_attr(ASKED, sorted(system_attrs(twin)))  # what the sampler noted: no later view needs it
    if waiting is None:
        study.enqueue_trial(given, user_attrs={SLOT: slot})
    trial = study.ask()  # the oldest waiting trial: the one given above, or the one asked again
    trial.set_user_attr(SLOT, slot)
    return trial, twin


def system_attrs(twin: optuna.Trial) -> dict[str, Any]:
    return twin.study.get_trials(deepcopy=False)[twin.number].system_attrs


def note(trial: optuna.Trial, twin: optuna.Trial) -> None:
    """Keep on the trial what its view's pruner noted on its twin after it was asked (ASHA's rungs): later
    views show it as it ended, with these."""
    asked = set(twin.user_attrs.get(ASKED, ()))
    noted = {k: v for k, v in system_attrs(twin).items() if k not in asked}
    if noted:
        trial.set_user_attr(NOTED, noted)
