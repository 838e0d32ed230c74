"""Sweeps on this machine: trials as job processes two at a time, every trial a run in the store, a repeated sweep
that trains nothing, pruning of a clearly bad trial, Stop and resume of a driver running as a job."""

import dataclasses

import pytest

from nnapp.__main__ import main
from nnapp.engine.config import RunConfig
from nnapp.engine.device import cpu_count
from nnapp.jobs.manager import JobManager
from nnapp.store.store import Store
from nnapp.sweep.driver import Driver, LocalExecutor
from nnapp.sweep.files import save_spec
from nnapp.sweep.spec import SweepSpec, check, parse_param
from nnapp.sweep.study import counted, objective_value, open_study, read_study, requeue, trial_run
from tests.conftest import TINY_SET
from tests.test_claims import wait_for

SEARCH = ["--param", "lr=1e-3:1e-2:log", "--param", "batch_size=32,64", "--trials", "6", "--parallel", "2", "--sampler", "tpe"]
# Several seconds a trial: long enough to be stopped in the middle.
SLOW = RunConfig(model="cnn", conv=((16, 3, 2),), hidden=(32,), train_subset=8000, batch_size=32, epochs=1, seed=7)


def runs_of(store: Store, trials) -> list:
    return [store.get(trial_run(t)["key"]) for t in trials]


def test_a_sweep_stores_every_trial_as_a_run_and_a_repeat_trains_nothing(home, capsys):
    """Two at a time with TPE, whose asks after the first trials depend on the scores it has seen: a repeat
    asks for the same configs whichever trial ended first, so it trains nothing (nnapp.sweep.view)."""
    assert main(["sweep", *TINY_SET, *SEARCH, "--name", "first"]) == 0
    out = capsys.readouterr().out
    assert out.count(" trained ") == 6 and "best      trial " in out and "6 of 6 trials ended (6 done)" in out
    store = Store(home)
    trials = read_study(home, "first").trials
    runs = runs_of(store, trials)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert all(r.status == "done" and r.has_weights() for r in runs) and len(store.runs()) == 6
    assert [t.value for t in trials] == [store.epochs(r.key)[-1]["val_acc"] for r in runs]  # validation, not test
    if runs[0].device.startswith("CPU"):  # the cores split between the two trials at a time
        n = max(1, cpu_count() // 2)
        assert {r.device for r in runs} == {f"CPU ({n} thread{'s' * (n > 1)})"}
    first_two = sorted(runs, key=lambda r: r.created)[:2]
    assert first_two[1].created < min(r.finished for r in first_two)  # both were under way at once

    stored = {r.key: (r.created, r.finished, len(store.steps(r.key))) for r in store.runs()}
    assert main(["sweep", *TINY_SET, *SEARCH, "--name", "again"]) == 0
    again = read_study(home, "again").trials
    assert [trial_run(t)["source"] for t in again] == ["cached"] * 6
    assert [(t.params, t.value) for t in again] == [(t.params, t.value) for t in trials]
    assert {r.key: (r.created, r.finished, len(store.steps(r.key))) for r in store.runs()} == stored  # nothing trained
    capsys.readouterr()

    assert main(["sweep", "--resume", "first", "--trials", "1", "--parallel", "2"]) == 0  # extended by one more trial
    resumed = read_study(home, "first").trials
    assert counted(resumed) == 7 and trial_run(resumed[6])["source"] == "trained"
    assert resumed[6].params not in [t.params for t in trials]  # the sampler drew past its first draws
    assert "7 of 7 trials ended" in capsys.readouterr().out
    assert main(["sweep", "--resume", "again", "--trials", "1", "--parallel", "2"]) == 0  # the same extension again
    extended = read_study(home, "again").trials
    assert extended[6].params == resumed[6].params and trial_run(extended[6])["source"] == "cached"


def test_pruning_stops_a_clearly_bad_trial_after_its_first_epoch(store, tiny):
    spec = check(SweepSpec("prune", tiny, (parse_param("lr=1e-4:10:log"),), trials=3, sampler="random", pruner="median"))
    study = open_study(spec, store.home)
    for lr in (3e-3, 4e-3, 10.0):
        study.enqueue_trial({"lr": lr})
    Driver(spec, store, LocalExecutor(spec, store)).run()
    trials = read_study(store.home, "prune").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    good, _, bad = runs_of(store, trials)
    assert good.status == "done" and len(store.epochs(good.key)) == tiny.epochs
    assert (bad.status, bad.config.lr, bad.test, bad.has_weights()) == ("pruned", 10.0, None, False)
    assert [e["epoch"] for e in store.epochs(bad.key)] == [1] and store.steps(bad.key)  # its curves so far are kept
    assert trial_run(trials[2])["pruned_at"] == 1 and bad.message.startswith("pruned by the sweep after epoch 1 of 3")

    # In a sweep whose pruner has no trials to compare with yet, the pruned run is not an answer: it trains in full.
    again = dataclasses.replace(spec, name="prune-again", trials=1)
    open_study(again, store.home).enqueue_trial({"lr": 10.0})
    Driver(again, store, LocalExecutor(again, store)).run()
    (trial,) = read_study(store.home, "prune-again").trials
    full = store.get(bad.key)
    assert (trial.state.name, trial_run(trial)["source"], full.status) == ("COMPLETE", "trained", "done")
    assert len(store.epochs(full.key)) == 3 and full.has_weights()


def test_trials_a_dead_driver_left_running_are_asked_again_first(store, tiny):
    spec = check(SweepSpec("crashed", tiny, (parse_param("lr=1e-3,2e-3"),), trials=2, sampler="grid"))
    study = open_study(spec, store.home)
    asked = study.ask()
    spec.params[0].suggest(asked)  # ...and the driver died before the trial ended
    requeue(study)
    trials = read_study(store.home, "crashed").trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].system_attrs["fixed_params"] == trials[0].params == {"lr": asked.params["lr"]}
    assert counted(trials) == 0


def test_stop_then_resume_a_sweep_whose_driver_is_a_job(store):
    spec = check(SweepSpec("stoppable", SLOW, (parse_param("lr=1e-3,2e-3"),), trials=1, sampler="grid"))
    save_spec(store.home, spec)
    jobs = JobManager(store)
    try:
        assert jobs.submit_task("sweep", spec.key, spec.to_dict()).state == "queued"
        key = wait_for(lambda: (s := read_study(store.home, spec.name)) and s.trials and s.trials[0].user_attrs.get("key"))
        wait_for(lambda: (store.get(key).progress or {}).get("step", 0) > 0)
        assert store.tasks.get(spec.key).pid != store.get(key).pid  # the driver and the trial: processes of their own
        assert jobs.cancel(spec.key)  # Stop
        assert jobs.wait(spec.key, timeout=120)
        assert store.tasks.get(spec.key).status == "cancelled" and store.get(key).status == "cancelled"
        assert store.steps(key)  # what the stopped trial learned is kept
        stopped = read_study(store.home, spec.name).trials
        assert [t.state.name for t in stopped] == ["FAIL", "WAITING"] and trial_run(stopped[0])["status"] == "cancelled"

        assert jobs.submit_task("sweep", spec.key, spec.to_dict()).state == "queued"  # Resume
        assert jobs.wait(spec.key, timeout=300)
    finally:
        jobs.shutdown()
    task = store.tasks.get(spec.key)
    assert task.status == "done" and task.result["counted"] == 1, (task.status, task.message, task.result)
    resumed = read_study(store.home, spec.name).trials
    assert resumed[1].params == stopped[0].params and trial_run(resumed[1])["key"] == key  # the stopped trial, again
    assert store.get(key).status == "done" and task.result["best"]["key"] == key


@pytest.mark.parametrize("objective", ["val_acc", "val_loss"])
def test_the_objective_is_the_kept_weights_validation_score(objective):
    epochs = [{"val_acc": 0.8, "val_loss": 0.5}, {"val_acc": 0.9, "val_loss": 0.3}, {"val_acc": 0.85, "val_loss": 0.4}]
    assert objective_value(epochs, objective, patience=0) == epochs[-1][objective]
    assert objective_value(epochs, objective, patience=1) == epochs[1][objective]  # early stopping keeps the best epoch
    assert objective_value([{"val_acc": float("nan"), "val_loss": float("nan")}], objective, 0) is None
