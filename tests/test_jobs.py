import threading
import time
import urllib.error

import pytest

from nnapp.engine.config import RunConfig
from nnapp.engine.data import DataError, load
from nnapp.engine.device import cpu_count
from nnapp.jobs.manager import JobManager
from nnapp.jobs.runs import wait_for_run

# Long enough to cancel mid-run: the full training set, a CNN, several epochs.
LONG = RunConfig(conv=((16, 3, 2),), hidden=(), epochs=5, batch_size=64)


@pytest.fixture
def jobs(store):
    """Jobs in training processes, as the app runs them."""
    manager = JobManager(store)
    yield manager
    manager.shutdown()


def wait_for(predicate, timeout=60.0, every=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_submit_trains_then_serves_from_cache(jobs, store, tiny):
    first = jobs.submit(tiny)
    assert first.state == "queued"
    assert jobs.wait(first.key, timeout=120)
    run = store.get(first.key)
    assert run.status == "done"
    if run.device.startswith("CPU"):  # the training process set its threads where it started
        assert run.device == f"CPU ({cpu_count()} thread{'s' * (cpu_count() > 1)})"
    assert jobs.submit(tiny).state == "cached"
    assert not jobs.is_active(first.key)


def test_concurrent_submits_of_one_config_train_once(jobs, store, tiny):
    states = []
    barrier = threading.Barrier(4)

    def submit():
        barrier.wait()
        states.append(jobs.submit(tiny).state)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert states.count("queued") == 1 and states.count("attached") + states.count("cached") == 3
    created = store.get(tiny.key()).created
    assert jobs.wait(tiny.key(), timeout=120)
    run = store.get(tiny.key())
    assert run.status == "done" and run.created == created and len(store.runs()) == 1
    assert jobs.submit(tiny).state == "cached"


def test_cancel_stops_a_running_job_within_a_step(jobs, store):
    """Not timed (the machine may be busy): the steps trained after the request show it stopped at once."""
    load("mnist")
    sub = jobs.submit(LONG)
    assert wait_for(lambda: (store.get(sub.key).progress or {}).get("step", 0) > 0), "never started"
    seen = store.get(sub.key).progress["step"]
    assert jobs.cancel(sub.key)
    assert jobs.wait(sub.key, timeout=30)
    run = store.get(sub.key)
    assert run.status == "cancelled"
    last = int(run.message.rsplit(" ", 1)[1])  # "cancelled at step N"
    # progress is written every 20 steps, so it lags the process by up to 20; then one step to notice
    assert seen <= last <= seen + 21 + 5, (seen, last)
    assert len(store.steps(sub.key)) > 0  # what it learned so far is kept


def test_queue_runs_in_order_and_cancels_queued(jobs, store, tiny):
    load("mnist")
    first = jobs.submit(LONG)
    second = jobs.submit(tiny)
    third = jobs.submit(tiny.replace(seed=1))
    assert jobs.position(second.key) in (1, 2) and jobs.position(third.key) == jobs.position(second.key) + 1
    assert jobs.active()[-2:] == [second.key, third.key]
    assert jobs.cancel(second.key)
    assert store.get(second.key).status == "cancelled"
    jobs.cancel(first.key)
    assert jobs.wait(third.key, timeout=120)
    assert store.get(third.key).status == "done"


def test_failure_in_the_training_process_is_recorded(jobs, store, tiny):
    # Names a personal set that does not exist: the training process refuses it.
    sub = jobs.submit(tiny.replace(personal="0123456789ab"))
    assert jobs.wait(sub.key, timeout=60)
    run = store.get(sub.key)
    assert run.status == "failed" and "personal" in run.message


def test_a_killed_training_process_marks_the_run_failed(jobs, store):
    import psutil

    load("mnist")
    sub = jobs.submit(LONG)
    assert wait_for(lambda: (store.get(sub.key).progress or {}).get("step", 0) > 0), "never started"
    children = [p for p in psutil.Process().children() if p.pid == store.get(sub.key).pid]
    assert children, "training did not run in a process of its own"
    children[0].kill()
    assert jobs.wait(sub.key, timeout=10)
    run = store.get(sub.key)
    assert run.status == "failed" and "stopped unexpectedly" in run.message


def test_offline_download_fails_with_one_clear_sentence(monkeypatch, tmp_path):
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):  # what torchvision's downloader raises with no network
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("NNAPP_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    load.cache_clear()
    with pytest.raises(DataError) as err:
        load("fashion_mnist")
    message = str(err.value)
    assert "FashionMNIST" in message and "offline" in message and message.count(". ") == 0
    assert load("mnist").train_x.shape[0] == 60_000  # nothing else broke


def test_a_run_still_training_in_another_process_is_attached_not_queued(jobs, store, tiny):
    # A training process left by an earlier server (here: a sleeping child standing in for it).
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        key = store.create(tiny, status="running")
        import sqlite3

        from nnapp.system.process import identity

        with sqlite3.connect(store.db_path) as db:
            db.execute("UPDATE runs SET pid=?, process=? WHERE key=?", (child.pid, identity(child.pid), key))
        assert jobs.submit(tiny).state == "attached"
        assert not jobs.is_active(key) and store.get(key).status == "running"
    finally:
        child.kill()
        child.wait()


def test_wait_for_run_returns_once_the_record_changes_or_at_the_timeout(store, tiny):
    key = store.claim(tiny).key
    store.set_status(key, "running", progress=None)
    ended = lambda r: not (r and r.is_active())  # noqa: E731
    start = time.monotonic()
    assert wait_for_run(store, key, ended, timeout=0.3).status == "running"  # nothing changed: the timeout
    assert 0.3 <= time.monotonic() - start < 10
    threading.Timer(0.4, store.set_status, (key, "cancelled")).start()
    start = time.monotonic()
    assert wait_for_run(store, key, ended, timeout=30).status == "cancelled"
    assert time.monotonic() - start < 20  # read soon after the change, long before the timeout
    assert wait_for_run(store, "0" * 16, lambda r: r is None, timeout=30) is None
