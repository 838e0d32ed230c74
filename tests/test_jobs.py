import threading
import time
import urllib.error

import pytest

from nnapp.config import RunConfig
from nnapp.data import DataError, load
from nnapp.jobs import JobManager

# Long enough to cancel mid-run: the full training set, a CNN, several epochs.
LONG = RunConfig(conv=((16, 3, 2),), hidden=(), epochs=5, batch_size=64)


@pytest.fixture
def jobs(store):
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
    assert store.get(first.key).status == "done"
    assert jobs.submit(tiny).state == "cached"
    assert not jobs.is_active(first.key)


def test_concurrent_submits_of_one_config_train_once(jobs, store, tiny, monkeypatch):
    import nnapp.train

    calls = []
    real_fit = nnapp.train.fit

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(nnapp.train, "fit", counting_fit)
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
    assert sorted(states).count("queued") == 1 and states.count("attached") + states.count("cached") == 3
    assert jobs.wait(tiny.key(), timeout=120)
    assert len(calls) == 1 and len(store.runs()) == 1


def test_cancel_stops_a_running_job_within_a_second(jobs, store):
    load("mnist")
    sub = jobs.submit(LONG)
    assert wait_for(lambda: (store.get(sub.key).progress or {}).get("step", 0) > 0), "never started"
    asked = time.perf_counter()
    assert jobs.cancel(sub.key)
    assert jobs.wait(sub.key, timeout=5)
    took = time.perf_counter() - asked
    run = store.get(sub.key)
    assert run.status == "cancelled" and took < 1.0, took
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


def test_failure_is_recorded_with_its_message(jobs, store, tiny, monkeypatch):
    import nnapp.train

    def broken(*args, **kwargs):
        raise RuntimeError("the GPU fell off the bus")

    monkeypatch.setattr(nnapp.train, "fit", broken)
    sub = jobs.submit(tiny)
    assert jobs.wait(sub.key, timeout=30)
    run = store.get(sub.key)
    assert run.status == "failed" and "fell off the bus" in run.message


def test_offline_download_fails_with_one_clear_sentence(jobs, store, tiny, monkeypatch, tmp_path):
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
    sub = jobs.submit(tiny.replace(dataset="fashion_mnist"))
    assert jobs.wait(sub.key, timeout=30)
    run = store.get(sub.key)
    assert run.status == "failed" and "FashionMNIST" in run.message
    assert load("mnist").train_x.shape[0] == 60_000  # nothing else broke
