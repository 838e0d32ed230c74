"""Stale state and races: a row left `running` whose pid now belongs to another process, delete against a
training or a retrain of the same run (deleting wins, nothing is kept), and weights files no row points at
(removed when the store next opens, also after kill -9 between a weights file and its row)."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnapp.__main__ import main
from nnapp.engine.records import retrain_key
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.jobs.manager import JobManager
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from nnapp.system.process import identity
from tests.test_claims import SLOW, cli, config_args, step_of, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def stranger():
    """A live process that has nothing to do with nnapp: its pid is what a restart would hand a new process."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def left_running(home: Path, key: str, pid: int, process: str | None, table: str = "runs") -> None:
    """The row as a crash, and a restart that reused its pid, leave it: running, in a live process that is not its own."""
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.execute(f"UPDATE {table} SET status='running', pid=?, process=? WHERE key=?", (pid, process, key))


def stale_owners(stranger) -> dict[str, str | None]:
    """Ways a row can name a live pid without being that process's: no identity (written by hand or by an
    older nnapp), the right pid but another start, another boot."""
    own = identity(stranger.pid)
    pid, start, boot = own.split(":") if own.count(":") == 2 else (own, "1", "boot")
    return {"no identity": None, "another start": f"{pid}:{int(start) + 7}:{boot}", "another boot": f"{pid}:{start}:0ther"}


@pytest.mark.parametrize("how", ["no identity", "another start", "another boot"])
def test_a_run_left_running_under_a_reused_pid_is_interrupted_and_trains_again(store, home, tiny, stranger, capsys, how):
    run = train_or_load(tiny.replace(epochs=1), store)
    left_running(home, run.key, stranger.pid, stale_owners(stranger)[how])
    assert not store.get(run.key).is_live()
    assert store.claim(run.config).state == ClaimState.CLAIMED  # not attached to a stranger for ever
    left_running(home, run.key, stranger.pid, stale_owners(stranger)[how])
    reopened = Store(home)  # whoever looks next marks it
    assert reopened.get(run.key).status == Status.INTERRUPTED
    left_running(home, run.key, stranger.pid, stale_owners(stranger)[how])
    path = config_args(run.config)
    started = time.monotonic()
    assert main(["train", "--quiet", *path]) == 0 and time.monotonic() - started < 120
    assert "following" not in capsys.readouterr().err
    left_running(home, run.key, stranger.pid, stale_owners(stranger)[how])
    assert main(["train", "--quiet", "--force", *path]) == 0
    left_running(home, run.key, stranger.pid, stale_owners(stranger)[how])
    assert main(["delete", run.key]) == 0 and Store(home).get(run.key) is None


def test_a_task_left_running_under_a_reused_pid_is_asked_again(store, home, stranger):
    store.tasks.claim(TaskKind.LR_FIND, "lr_find:stale", {})
    left_running(home, "lr_find:stale", stranger.pid, None, table="tasks")
    assert store.tasks.claim(TaskKind.LR_FIND, "lr_find:stale", {}).state == ClaimState.CLAIMED
    left_running(home, "lr_find:stale", stranger.pid, stale_owners(stranger)["another start"], table="tasks")
    assert Store(home).tasks.get("lr_find:stale").status == Status.INTERRUPTED


def test_a_live_training_is_still_followed(store, home):
    """The identity does not make a live trainer look dead: a second launch follows it."""
    proc = cli(home, *config_args(SLOW))
    try:
        wait_for(lambda: step_of(store, SLOW.key()) > 0)
        run = store.get(SLOW.key())
        assert run.is_live() and run.pid == proc.pid
        assert store.claim(SLOW).state == ClaimState.ATTACHED
        assert Store(home).get(SLOW.key()).status == Status.RUNNING
    finally:
        proc.kill()
        proc.wait()


def weights_files(store) -> list[str]:
    return sorted(p.name for p in (store.home / "weights").glob("*.safetensors"))


def rows_of(home: Path, key: str) -> dict[str, int]:
    with sqlite3.connect(home / "runs.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'sqlite_sequence'")]
        columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE key IN (?, ?)", (key, retrain_key(key))).fetchone()[0]
            for t in tables
            if "key" in columns[t]
        }


def test_deleting_a_run_while_its_retrain_trains_stops_the_retrain_and_keeps_nothing(store, home):
    train_or_load(SLOW, store)
    proc = cli(home, "--force", *config_args(SLOW))
    wait_for(lambda: step_of(store, retrain_key(SLOW.key())) > 0)
    started = time.monotonic()
    assert main(["delete", SLOW.key()]) == 0
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 60  # stopped within steps, not trained to its end
    assert proc.returncode == 2 and err.strip().splitlines()[-1] == (
        f"nnapp: error: run {SLOW.key()} was deleted while it trained; nothing of that training was kept"
    )
    assert Store(home).runs() == [] and weights_files(store) == []
    assert set(rows_of(home, SLOW.key()).values()) == {0}  # no steps, epochs or histograms left behind


def test_deleting_a_run_the_app_trains_stops_it_and_keeps_nothing(store, home):
    jobs = JobManager(store)
    try:
        sub = jobs.submit(SLOW)
        wait_for(lambda: step_of(store, sub.key) > 0)
        store.delete(sub.key)  # what Compare's Delete does for a run it found not training any more
        assert jobs.wait(sub.key, timeout=60)
    finally:
        jobs.shutdown()
    assert Store(home).get(SLOW.key()) is None and weights_files(store) == []
    assert set(rows_of(home, SLOW.key()).values()) == {0}
    assert train_or_load(SLOW.replace(epochs=1), store).status == Status.DONE  # the store goes on


WRITER = """
import os, sys, time
sys.path.insert(0, {root!r})
from nnapp.store.store import Store
store = Store({home!r})
with store.writing_weights():
    store.write_weights("{key}", b"weights of a run whose row never came")
    print("written", flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), 9)  # between the weights' rename and the row update
    time.sleep(300)
"""


def test_weights_no_row_points_at_are_removed_when_the_store_next_opens(store, home, tiny):
    kept = train_or_load(tiny.replace(epochs=1), store)
    script = WRITER.format(root=str(ROOT), home=str(home), key="0123456789abcdef")
    killed = subprocess.run([sys.executable, "-c", script, "kill"], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL and "written" in killed.stdout
    (store.home / "weights" / "fedcba9876543210.safetensors").write_bytes(b"left by an older nnapp")
    (store.home / "ood").mkdir(exist_ok=True)
    (store.home / "ood" / "fedcba9876543210.safetensors").write_bytes(b"a check of a run that is gone")
    (store.home / "weights" / "notes.txt").write_text("not a name nnapp writes: left alone")
    assert len(weights_files(store)) == 3
    Store(home)
    assert weights_files(store) == [store.weights_path(kept.key).name]
    assert not list((store.home / "ood").glob("fedcba*")) and (store.home / "weights" / "notes.txt").exists()
    store.load_model(kept.key)


def test_a_writer_between_its_weights_and_its_row_is_left_alone(store, home):
    script = WRITER.format(root=str(ROOT), home=str(home), key="0123456789abcdef")
    proc = subprocess.Popen([sys.executable, "-c", script, "wait"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        Store(home)  # opened while the writer is between its file and its row
        assert len(weights_files(store)) == 1
    finally:
        proc.kill()
        proc.wait()
    Store(home)  # the writer died: its lock went with it
    assert weights_files(store) == []


def test_a_retrain_that_ends_after_its_run_was_deleted_keeps_nothing(store, home, monkeypatch):
    """The race at its narrowest: the retrain's weights are written, then the run is deleted, then the row update."""
    train_or_load(SLOW.replace(epochs=1), store)
    write = Store.write_weights

    def write_then_delete(self, key, blob):
        written = write(self, key, blob)
        self.delete(SLOW.replace(epochs=1).key())
        return written

    monkeypatch.setattr(Store, "write_weights", write_then_delete)
    with pytest.raises(Exception, match="was deleted while it trained"):
        train_or_load(SLOW.replace(epochs=1), store, force=True)
    assert store.runs() == [] and weights_files(store) == []
    assert os.listdir(store.home / "weights") == []
