"""A team on one server: who made what (runs, sweeps, drawings), the queue serving people in turn, and the
host's right to cancel someone else's run (the server's password, asked again)."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nnapp.engine.people import NAME_MAX, BadName, clean_name
from nnapp.engine.states import TaskKind
from nnapp.jobs.fairqueue import FairQueue
from nnapp.jobs.manager import JobManager
from nnapp.store.store import Store
from nnapp.sweep.spec import SweepSpec, check, parse_param
from tests.test_jobs import LONG, wait_for


@dataclass
class Item:
    owner: str
    seq: int
    name: str


def test_the_fair_queue_serves_three_people_in_turn():
    queue = FairQueue()
    arrivals = ["a1", "a2", "a3", "a4", "b1", "b2", "c1"]  # Alice queued four before Bob and Carol came
    for seq, name in enumerate(arrivals):
        queue.append(Item({"a": "alice", "b": "bob", "c": "carol"}[name[0]], seq, name))
    planned = [item.name for item in queue.order()]
    served = [queue.pop().name for _ in arrivals]
    assert served == planned == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    for seq, name in enumerate(["b3", "a5", "c2"], start=10):  # latecomers: whoever was served longest ago goes first
        queue.append(Item({"a": "alice", "b": "bob", "c": "carol"}[name[0]], seq, name))
    assert [queue.pop().name for _ in range(3)] == ["c2", "b3", "a5"]


def test_someone_with_work_running_elsewhere_waits_behind_the_others():
    queue = FairQueue()
    for seq, (owner, name) in enumerate([("alice", "a1"), ("bob", "b1"), ("alice", "a2")]):
        queue.append(Item(owner, seq, name))
    assert [i.name for i in queue.order(busy={"alice": 2})] == ["b1", "a1", "a2"]  # her sweep's trials train


def test_the_job_manager_trains_three_peoples_queues_in_turn(store, tiny):
    jobs = JobManager(store)
    try:
        blocker = jobs.submit(LONG, owner="alice")
        assert wait_for(lambda: jobs.position(blocker.key) == 0)
        quick = tiny.replace(epochs=1, train_subset=200)
        wanted = {"a1": "alice", "a2": "alice", "b1": "bob", "b2": "bob", "c1": "carol"}
        keys = {name: jobs.submit(quick.replace(seed=i), owner=owner).key for i, (name, owner) in enumerate(wanted.items())}
        names = {key: name for name, key in keys.items()}
        assert [names[k] for k in jobs.active()[1:]] == ["b1", "c1", "a1", "b2", "a2"]
        entries = jobs.queue()
        assert [(e.position, e.owner) for e in entries] == [
            (0, "alice"),
            (1, "bob"),
            (2, "carol"),
            (3, "alice"),
            (4, "bob"),
            (5, "alice"),
        ]
        jobs.cancel(blocker.key)
        assert all(jobs.wait(k, timeout=180) for k in keys.values())
        started = sorted(keys, key=lambda name: store.get(keys[name]).started)
        assert started == ["b1", "c1", "a1", "b2", "a2"]  # the order they really trained in
        assert {name: store.get(key).owner for name, key in keys.items()} == wanted
    finally:
        jobs.shutdown()


def test_names_are_recorded_on_runs_tasks_drawings_and_data_sets(store, tiny):
    from nnapp.jobs.runs import train_or_load

    config = tiny.replace(epochs=1, train_subset=200)
    run = train_or_load(config, store)  # from the CLI's side: the machine's user
    assert run.owner and run.owner == clean_name(run.owner)
    claim = store.claim(config.replace(seed=5), owner="Ada Lovelace")
    assert store.get(claim.key).owner == "Ada Lovelace"
    assert store.claim(config.replace(seed=5), owner="Bob").state == "attached"  # a second launcher: one run, first name kept
    assert store.get(claim.key).owner == "Ada Lovelace"
    store.tasks.claim(TaskKind.TSNE, "tsne:x", {}, owner="Bob")
    assert store.tasks.get("tsne:x").owner == "Bob"
    drawing = store.add_drawing(np.zeros((28, 28), np.uint8), 3, owner="Carol <b>")
    assert store.drawing_owners()[drawing] == "Carol <b>"
    assert "Ada Lovelace" in store.get(claim.key).label()
    store.create_dataset("shapes", ["circle", "square"], owner="Dana")
    assert store.data_set("shapes").owner == "Dana" and [d.owner for d in store.data_sets()] == ["Dana"]
    store.create_dataset("mine", ["a", "b"])  # from the CLI's side: the machine's user
    assert store.data_set("mine").owner == run.owner


def test_a_sweeps_trials_are_its_owners_runs(store, tiny):
    spec = check(
        SweepSpec("team", tiny.replace(epochs=1, train_subset=300), (parse_param("lr=1e-3,2e-3"),), trials=2, sampler="grid")
    )
    jobs = JobManager(store)
    try:
        assert jobs.submit_task(TaskKind.SWEEP, spec.key, spec.to_dict(), owner="Grace").state == "queued"
        assert store.tasks.get(spec.key).owner == "Grace"
        assert jobs.wait(spec.key, timeout=180)
    finally:
        jobs.shutdown()
    assert store.tasks.get(spec.key).status == "done"
    trials = [r for r in store.runs() if r.config.train_subset == 300]
    assert len(trials) == 2 and {r.owner for r in trials} == {"Grace"}


def test_a_store_from_before_names_opens_and_gets_the_column(tmp_path, tiny):
    home = tmp_path / "old"
    Store(home)
    with sqlite3.connect(home / "runs.sqlite") as db:  # as a store made before owners were kept
        for table in ("runs", "tasks", "drawings"):
            db.execute(f"ALTER TABLE {table} DROP COLUMN owner")
        db.execute("INSERT INTO runs (key, config, status, created) VALUES (?, ?, 'done', 1.0)", (tiny.key(), tiny.to_json()))
    store = Store(home)
    assert store.get(tiny.key()).owner is None and store.get(tiny.key()).status == "done"
    with sqlite3.connect(home / "runs.sqlite") as db:
        assert all("owner" in {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in ("runs", "tasks", "drawings"))


@pytest.mark.parametrize("bad", ["", "   ", "x" * (NAME_MAX + 1), "bell\x07", "zero\u200bwidth"])
def test_a_name_that_cannot_be_shown_is_refused_in_one_sentence(bad):
    with pytest.raises(BadName) as err:
        clean_name(bad)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


def test_names_are_tidied():
    assert clean_name("  Ada   Lovelace ") == "Ada Lovelace"


PASSWORD = "correct horse battery staple"


def signed_in(name: str):
    """The Home page of a shared server, signed in as `name` through the sign-in form."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60).run()
    at.text_input(key="password").input(PASSWORD)
    at.text_input(key="sign_in_name").input(name)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_a_person_cancels_their_own_job_but_someone_elses_only_with_the_password(home, monkeypatch, tiny):
    """Bob trains and has a second job queued; Alice's Cancel on them asks for the server's password (the host's
    right) and cancels nothing until it is typed; her own queued job she cancels at once."""
    import streamlit as st

    import ui

    monkeypatch.setenv("NNAPP_PASSWORD", PASSWORD)
    st.cache_resource.clear()
    jobs = ui.jobs()  # the app's job manager (st.cache_resource): the pages below show its queue
    try:
        bobs = jobs.submit(LONG, owner="Bob")
        bobs_next = jobs.submit(tiny.replace(seed=3), owner="Bob")
        alices = jobs.submit(tiny.replace(seed=4), owner="Alice")
        assert wait_for(lambda: jobs.position(bobs.key) == 0)
        at = signed_in("Alice")
        assert ui.escaped("Alice") in " ".join(c.value for c in at.caption)  # the sidebar says who she is
        at.button(key=f"home_cancel_{bobs_next.key}").click().run()
        assert jobs.is_active(bobs_next.key) and at.text_input(key=f"host_password_cancel_{bobs_next.key}")
        at.text_input(key=f"host_password_cancel_{bobs_next.key}").input("a guess")
        at.button(key=f"FormSubmitter:host_cancel_{bobs_next.key}-Confirm with the password").click().run()
        assert "Wrong password." in [e.value for e in at.error] and jobs.is_active(bobs_next.key)
        at.text_input(key=f"host_password_cancel_{bobs_next.key}").input(PASSWORD)
        at.button(key=f"FormSubmitter:host_cancel_{bobs_next.key}-Confirm with the password").click().run()
        assert not jobs.is_active(bobs_next.key) and ui.store().get(bobs_next.key).status == "cancelled"
        at.button(key=f"home_cancel_{alices.key}").click().run()  # her own: no password
        assert not jobs.is_active(alices.key) and ui.store().get(alices.key).status == "cancelled"
        assert jobs.is_active(bobs.key)  # Bob's training went on throughout
    finally:
        jobs.shutdown()
        st.cache_resource.clear()


def test_signing_in_with_a_name_that_cannot_be_shown_says_why(home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("NNAPP_PASSWORD", PASSWORD)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60).run()
    at.text_input(key="password").input(PASSWORD)
    at.text_input(key="sign_in_name").input("bell\x07")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["A name cannot hold control or invisible formatting characters (a line break, a tab)."]
    assert at.text_input(key="password")  # still signing in
    at.text_input(key="sign_in_name").input("")  # no name: a guest's
    at.button[0].click().run()
    assert at.session_state["display_name"].startswith("guest ") and at.title[0].value == "nnapp"
    assert "Signed in as" in " ".join(c.value for c in at.caption)


@pytest.mark.browser
def test_deleting_someone_elses_run_on_compare_asks_for_the_password_in_its_dialog(tmp_path, tiny, browser):
    """Ada ticks Bob's run on Compare and deletes it through the dialog: it goes only once the server's
    password is typed there (the host's right), by the clicks a person makes."""
    from nnapp.jobs.runs import train_or_load
    from tests.appserver import serve
    from tests.gestures import no_exception, settle, tick_row_with

    store = Store(tmp_path / "runs")
    run = train_or_load(tiny.replace(epochs=1), store)
    with sqlite3.connect(store.home / "runs.sqlite") as db:  # launched by someone else
        db.execute("UPDATE runs SET owner='Bob' WHERE key=?", (run.key,))
    with serve(store.home, env={"NNAPP_PASSWORD": PASSWORD}) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{url}/compare")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("textbox", name="Your name").fill("Ada")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Compare").first.wait_for(timeout=60_000)
        settle(page)
        tick_row_with(page, "runs_table", "Bob")
        page.get_by_role("button", name="Delete 1 selected run…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Delete", exact=True).click()
        dialog.get_by_text("belongs to Bob").wait_for(timeout=30_000)
        assert store.get(run.key) is not None  # not without the password
        dialog.get_by_label("Server password").fill(PASSWORD)
        dialog.get_by_role("button", name="Confirm with the password").click()
        page.get_by_text("Deleted 1 run").wait_for(timeout=30_000)
        assert store.get(run.key) is None
        no_exception(page)
