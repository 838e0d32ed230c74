"""The route the Train page polls while a run trains (panels/live.py), called as serve.py mounts it."""

import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

from starlette.requests import Request

from nnapp.system.process import identity
from panels import live

STEP = {"epoch": 1, "epochs": 1, "phase": "training", "samples_per_s": 1000.0}


def get(**query) -> tuple[int, dict | str]:
    request = Request({"type": "http", "method": "GET", "query_string": urlencode(query).encode(), "headers": []})
    response = live.endpoint(request)
    body = response.body.decode()
    return response.status_code, json.loads(body) if response.media_type == "application/json" else body


def steps(n: int) -> list[dict]:
    return [
        {"step": i, "epoch": 1, "loss": 2.0 / i, "acc": 0.5, "lr": 1e-3, "samples_per_s": 1e3, "elapsed": i / 10}
        for i in range(1, n + 1)
    ]


def test_a_run_reads_only_with_its_own_token(store, tiny):
    key = store.claim(tiny).key
    assert get() == (400, "run= is needed")
    assert get(run=key)[0] == 403
    assert get(run=key, token="0" * 32)[0] == 403
    other = store.claim(tiny.replace(seed=1)).key
    assert live.token(other) != live.token(key)
    assert get(run=key, token=live.token(other))[0] == 403  # a page watching one run cannot read another
    assert get(run="x" * 500, token=live.token("x" * 500))[0] == 400
    status, body = get(run=key, token=live.token(key))
    assert status == 200 and body["status"] == "queued" and body["active"]


def test_a_training_run_is_polled_with_its_bar_and_curves_until_it_ends(store, tiny):
    key = store.claim(tiny).key
    store.set_status(key, "running", progress=None)  # "trained" by this process, which is alive
    status, body = get(run=key, token=live.token(key))
    assert body["active"] and body["soon"] and body["text"] == "loading data and building the model…"
    assert body["data"]["step_x"] == [] and body["data"]["note"]
    progress = {**STEP, "step": 40, "total_steps": 50, "eta": 3.0}
    store.set_progress(key, progress, steps(40), None)
    status, body = get(run=key, token=live.token(key))
    assert status == 200 and body["active"] and not body["soon"] and body["done"] == 0.8
    assert body["text"] == "training · epoch 1/1 · step 40/50 · 1,000 samples/s · ETA 3s"
    assert len(body["data"]["step_x"]) == 40 and body["data"]["x_max"] == tiny.epochs
    store.set_progress(key, {**progress, "step": 49, "eta": 0.2}, steps(49)[40:], None)
    assert get(run=key, token=live.token(key))[1]["soon"]  # near its end: polled more often
    store.set_status(key, "cancelled", message="cancelled at step 49")
    body = get(run=key, token=live.token(key))[1]
    assert not body["active"] and body["status"] == "cancelled" and body["text"] == "cancelled at epoch 1/1 · step 49/50"


def test_a_run_whose_process_died_is_not_polled_for_ever(store, tiny):
    """A run whose process dies while the page polls reads as interrupted at the next poll: the page reruns
    once and says so (the route's store, made before the death, does not find it on its own)."""
    key = store.claim(tiny).key
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.set_status(key, "running", progress=None, pid=trainer.pid, process=identity(trainer.pid))
        body = get(run=key, token=live.token(key))[1]
        assert body["status"] == "running" and body["active"]
    finally:
        trainer.kill()
        trainer.wait()
    body = get(run=key, token=live.token(key))[1]
    assert body["status"] == "interrupted" and not body["active"]


def test_a_run_gone_or_a_damaged_store_ends_the_polling(store, tiny, home):
    gone = "f" * 16
    assert get(run=gone, token=live.token(gone)) == (200, {"active": False})
    key = store.claim(tiny).key
    (home / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    status, body = get(run=key, token=live.token(key))
    assert status == 200 and body["active"] is False and body["error"]


def test_the_route_is_there_only_where_serve_py_mounted_it(monkeypatch):
    monkeypatch.delenv(live.MOUNTED_ENV, raising=False)
    assert not live.mounted()
    code = "import serve; from panels import live; print(live.mounted(), [r.path for r in serve.app._user_routes])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, check=True)
    assert out.stdout.split(" ", 1) == ["True", f"['{live.PATH}']\n"]


def test_a_new_password_makes_new_tokens(monkeypatch):
    monkeypatch.setenv("NNAPP_PASSWORD", "a long passphrase")
    before = live.token("k")
    monkeypatch.setenv("NNAPP_PASSWORD", "another long passphrase")
    assert live.token("k") != before


def test_a_held_poll_answers_when_the_run_moves_on_and_not_before(store, tiny, monkeypatch):
    """Near a run's start or end the page asks with since=its stage and wait=1: the answer comes when the
    stage changes (the first step, the end), or after live.HOLD with the same stage; without wait at once."""
    monkeypatch.setattr(live, "HOLD", 0.4)
    key = store.claim(tiny).key
    store.set_status(key, "running", progress=None)
    token = live.token(key)
    first = get(run=key, token=token)[1]
    assert first["soon"] and first["sig"] == "running::0"
    started = time.monotonic()
    assert get(run=key, token=token, since=first["sig"], wait=1)[1]["sig"] == first["sig"]  # nothing new
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    get(run=key, token=token, since=first["sig"])  # no wait asked for: at once, though nothing changed
    assert time.monotonic() - started < 0.4

    monkeypatch.setattr(live, "HOLD", 30.0)
    progress = {**STEP, "step": 49, "total_steps": 50, "eta": 0.2}

    def trainer():
        time.sleep(0.3)
        store.set_progress(key, {**progress, "step": 48}, steps(48), None)  # a new step, the same stage
        time.sleep(0.3)
        store.set_status(key, "done", message="")

    store.set_progress(key, progress, steps(47), None)
    held = get(run=key, token=token)[1]
    assert held["sig"] == "running:training:1" and held["soon"]
    thread = threading.Thread(target=trainer)
    started = time.monotonic()
    thread.start()
    body = get(run=key, token=token, since=held["sig"], wait=1)[1]
    took = time.monotonic() - started
    thread.join()
    assert body["status"] == "done" and not body["active"] and 0.5 < took < 20
    assert get(run=key, token=token, since="gone", wait=1)[1]["status"] == "done"  # a stage it no longer has: at once
