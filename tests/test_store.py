import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from nnapp.system.errors import StoreError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_store_uses_wal_and_nnapp_home(home):
    store = Store()
    assert store.home == home
    import sqlite3

    with sqlite3.connect(store.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_record_is_complete(tiny, store):
    run = train_or_load(tiny, store)
    assert run.status == "done"
    assert run.device and run.precision in ("fp32", "bf16") and run.train_seconds > 0
    assert run.started <= run.finished
    assert len(store.epochs(run.key)) == 3 and len(store.steps(run.key)) == 45
    assert len(run.test["precision"]) == 10 and len(run.test["recall"]) == 10
    assert store.weights_path(run.key).read_bytes()[:8]  # safetensors header length
    assert store.counts() == {"done": 1}


def test_corrupted_weights_are_reported_not_loaded(tiny, store):
    run = train_or_load(tiny, store)
    path = store.weights_path(run.key)
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match="corrupted"):
        store.load_weights(run.key)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.load_model(run.key)
    assert store.get(run.key).status == "done"  # the run itself is kept


def test_run_left_running_by_a_dead_process_is_interrupted(tiny, home):
    # A separate process creates a run, marks it running, and dies without cleaning up.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        from nnapp.store.store import Store
        from tests.conftest import TINY
        store = Store({str(home)!r})
        key = store.create(TINY)
        store.set_status(key, "running")
        os._exit(9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert proc.returncode == 9
    store = Store(home)
    run = store.get(tiny.key())
    assert run.status == "interrupted" and "stopped" in run.message


def test_live_run_of_this_process_is_not_interrupted(tiny, store):
    key = store.create(tiny)
    store.set_status(key, "running")
    Store(store.home)
    assert store.get(key).status == "running"


def test_retraining_replaces_old_metrics(tiny, store):
    run = train_or_load(tiny, store)
    again = train_or_load(tiny, store, force=True)
    assert again.key == run.key
    assert len(store.steps(run.key)) == 45 and len(store.runs()) == 1


def test_delete_removes_run_and_weights(tiny, store):
    run = train_or_load(tiny, store)
    store.delete(run.key)
    assert store.get(run.key) is None and not store.weights_path(run.key).exists()


def test_unreadable_config_row_is_shown_as_unreadable(tiny, store):
    train_or_load(tiny, store)
    import sqlite3

    with sqlite3.connect(store.db_path) as db:
        db.execute(
            "INSERT INTO runs (key, config, status, created) VALUES ('00000000000000ff', '{\"future_field\": 1}', 'done', 0)"
        )
    runs = store.runs()
    assert [(r.key, r.status) for r in runs] == [(tiny.key(), "done"), ("00000000000000ff", "unreadable")]
    assert runs[1].message == "its config cannot be read: future_field: unknown field"


def test_drawings_round_trip(store):
    digit = np.zeros((28, 28), np.uint8)
    digit[5:20, 13:15] = 255
    first = store.add_drawing(digit, 1)
    store.add_drawing(digit.T.copy(), 7)
    images, labels, ids = store.drawings()
    assert images.shape == (2, 28, 28) and labels.tolist() == [1, 7] and ids[0] == first
    assert np.array_equal(images[0], digit)
    store.delete_drawing(first)
    assert store.drawings()[1].tolist() == [7]
    with pytest.raises(ValueError):
        store.add_drawing(np.zeros((10, 10)), 3)


def test_weights_load_without_pickle(tiny, store):
    run = train_or_load(tiny, store)
    from safetensors import safe_open

    with safe_open(str(store.weights_path(run.key)), "pt") as f:
        assert set(f.keys()) == set(store.load_weights(run.key))
    assert all(isinstance(v, torch.Tensor) for v in store.load_weights(run.key).values())


def test_steps_can_be_thinned_for_charts(tiny, store):
    run = train_or_load(tiny, store)
    all_steps = store.steps(run.key)
    thin = store.steps(run.key, max_rows=10)
    assert len(all_steps) == 45 and 5 <= len(thin) <= 10
    assert [s["step"] for s in thin] == sorted(s["step"] for s in thin)
