"""One training per config across processes, retrains that never destroy the finished run, kill -9 anywhere."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.records import retrain_key
from nnapp.engine.states import TaskKind
from nnapp.jobs.manager import JobManager
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from nnapp.tasks.run import TASKS, Task, run_task

ROOT = Path(__file__).resolve().parent.parent
# Several seconds of training: long enough to be caught in the middle.
SLOW = RunConfig(model="cnn", conv=((16, 3, 2),), hidden=(32,), train_subset=8000, batch_size=32, epochs=3, seed=7)


def cli(home, *args):
    env = {**os.environ, "NNAPP_HOME": str(home)}
    cmd = [sys.executable, "-m", "nnapp", "train", "--quiet", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def config_args(config: RunConfig) -> list[str]:
    """--config FILE for the CLI: the exact config, whatever its preset defaults are."""
    path = Path(os.environ["NNAPP_HOME"]).parent / f"{config.key()}.json"
    path.write_text(config.to_json())
    return ["--config", str(path)]


def wait_for(predicate, timeout=120.0, every=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def step_of(store, key):
    run = store.get(key)
    return (run.progress or {}).get("step", 0) if run else 0


def phase_of(store, key):
    run = store.get(key)
    return (run.progress or {}).get("phase") if run else None


def snapshot(store, key):
    """What must survive: the row's result, the weights' bytes, the metrics and the predictions."""
    run = store.get(key)
    pred, prob = store.predictions(key)
    return {
        "status": run.status,
        "test": run.test,
        "sha": run.weights_sha256,
        "weights": store.weights_path(key).read_bytes(),
        "epochs": store.epochs(key),
        "steps": len(store.steps(key)),
        "pred": pred.tobytes(),
        "prob": prob.tobytes(),
    }


def integrity_ok(home) -> bool:
    with sqlite3.connect(Path(home) / "runs.sqlite") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_claims_decide_once(store, tiny):
    assert store.claim(tiny).state == "claimed"
    assert store.claim(tiny).state == "attached"  # this process is alive and holds it
    store.set_status(tiny.key(), "cancelled")  # let go of it
    train_or_load(tiny, store)
    assert store.claim(tiny).state == "cached"
    retrain = store.claim(tiny, force=True)
    assert (retrain.state, retrain.key) == ("claimed", retrain_key(tiny.key()))
    assert store.claim(tiny, force=True) == retrain.__class__(retrain.key, "attached")
    assert [r.key for r in store.runs()] == [tiny.key()]  # a retrain is not a run of its own


def test_two_cli_launches_of_one_config_train_once(home):
    load("mnist")
    procs = [cli(home, *config_args(SLOW)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = [err for _, err in outs]
    assert sum(e.startswith("training ") for e in said) == 1, said
    assert sum(e.startswith("following ") or "loaded from cache" in out for out, e in outs) == 1, outs
    store = Store(home)
    run = store.get(SLOW.key())
    assert run.status == "done" and len(store.runs()) == 1
    assert len(store.steps(SLOW.key())) == SLOW.epochs * SLOW.steps_per_epoch()  # trained once, not twice
    assert all(f"{run.accuracy * 100:.2f}%" in out for out, _ in outs)


def test_the_cli_follows_a_run_the_app_is_training(store, home):
    load("mnist")
    jobs = JobManager(store)
    try:
        sub = jobs.submit(SLOW.replace(epochs=20))
        wait_for(lambda: step_of(store, sub.key) > 0)
        follower = cli(home, *config_args(SLOW.replace(epochs=20)))
        said = follower.stderr.readline()  # its first line: what its claim found
        jobs.cancel(sub.key)  # the follower ends with the run it follows
        out, err = follower.communicate(timeout=60)
    finally:
        jobs.shutdown()
    assert said.startswith(f"following {sub.key}") and "\ntraining" not in err, (said, err)
    assert follower.returncode == 1 and "[cancelled]" in out


@pytest.fixture
def finished(store):
    run = train_or_load(SLOW, store)
    assert run.status == "done"
    return snapshot(store, SLOW.key())


def test_a_killed_cli_retrain_leaves_the_finished_run_intact(store, home, finished):
    proc = cli(home, "--force", *config_args(SLOW))
    wait_for(lambda: step_of(store, retrain_key(SLOW.key())) > 0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = Store(home)  # marks the dead retrain interrupted
    assert reopened.get(retrain_key(SLOW.key())).status == "interrupted"
    assert snapshot(reopened, SLOW.key()) == finished
    reopened.load_model(SLOW.key())
    assert [r.key for r in reopened.runs()] == [SLOW.key()] and integrity_ok(home)
    # and a later retrain still works, replacing the run only once it has succeeded
    again = train_or_load(SLOW, reopened, force=True)
    assert again.key == SLOW.key() and again.status == "done" and again.created > 0
    assert reopened.get(retrain_key(SLOW.key())) is None


def test_a_cancelled_retrain_in_the_app_keeps_the_finished_run(store, finished):
    jobs = JobManager(store)
    try:
        sub = jobs.submit(SLOW, force=True)
        assert (sub.state, sub.key) == ("queued", retrain_key(SLOW.key()))
        assert store.get(SLOW.key()).status == "done"  # still served while the retrain runs
        wait_for(lambda: step_of(store, sub.key) > 0)
        jobs.cancel(sub.key)
        assert jobs.wait(sub.key, timeout=60)
    finally:
        jobs.shutdown()
    assert store.get(sub.key).status == "cancelled"
    assert snapshot(store, SLOW.key()) == finished


def test_a_successful_retrain_replaces_the_run_and_its_weights(store, finished):
    before = store.get(SLOW.key())
    run = train_or_load(SLOW, store, force=True)
    assert run.key == SLOW.key() and run.status == "done" and run.created > before.created
    assert store.get(retrain_key(SLOW.key())) is None and len(store.runs()) == 1
    assert len(store.steps(SLOW.key())) == finished["steps"]  # the new metrics, not both
    files = sorted(p.name for p in (store.home / "weights").iterdir())
    assert files == [store.weights_path(SLOW.key()).name]  # the old file is gone unless it is the same bytes
    store.load_model(SLOW.key())


@pytest.mark.parametrize("moment", ["starting", "training", "evaluating"])
def test_kill_9_of_a_cli_training_leaves_the_store_sound(store, home, tiny, moment):
    earlier = train_or_load(tiny, store)
    kept = snapshot(store, earlier.key)
    proc = cli(home, *config_args(SLOW))
    if moment == "starting":
        wait_for(lambda: store.get(SLOW.key()) is not None)
    else:
        wait_for(lambda: phase_of(store, SLOW.key()) == moment, every=0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = Store(home)
    assert reopened.get(SLOW.key()).status == "interrupted"
    assert integrity_ok(home) and snapshot(reopened, earlier.key) == kept
    assert train_or_load(SLOW, reopened).status == "done"  # an interrupted run trains again


def test_kill_9_of_an_app_job_leaves_the_store_sound(store, home, tiny):
    import psutil

    earlier = train_or_load(tiny, store)
    kept = snapshot(store, earlier.key)
    jobs = JobManager(store)
    try:
        sub = jobs.submit(SLOW)
        wait_for(lambda: step_of(store, sub.key) > 0)
        psutil.Process(store.get(sub.key).pid).kill()
        assert jobs.wait(sub.key, timeout=30)
    finally:
        jobs.shutdown()
    run = store.get(sub.key)
    assert run.status == "failed" and "stopped unexpectedly" in run.message
    assert integrity_ok(home) and snapshot(store, earlier.key) == kept


def echo(payload, store, handle):
    for i in range(3):
        handle.report(i + 1, 3, f"step {i + 1}")
    return {"echo": payload["value"]}


def test_a_task_reports_progress_and_its_result(store, monkeypatch):
    monkeypatch.setitem(TASKS, TaskKind.TSNE, Task(echo, "returns its payload"))
    claim = store.tasks.claim("tsne", "tsne:1", {"value": 42})
    assert claim.state == "claimed" and store.tasks.claim("tsne", "tsne:1", {"value": 42}).state == "attached"
    assert run_task("tsne", "tsne:1", {"value": 42}, store) == "done"
    task = store.tasks.get("tsne:1")
    assert task.is_done() and task.result == {"echo": 42} and task.progress == {"done": 3, "total": 3, "text": "step 3"}
    assert store.tasks.claim("tsne", "tsne:1", {"value": 42}).state == "cached"
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        store.tasks.claim("nope", "nope:1", {})
    assert np.isfinite(task.created)
