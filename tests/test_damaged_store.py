"""A damaged run store: one bad row, a file that is not SQLite, a read-only folder, killed writes, bad weights.

Each case gets one sentence (CLI: `nnapp: error: ...`, exit 2; pages: an error, no exception) and loses no
other run.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnapp.__main__ import main
from nnapp.engine.names import default_name
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from nnapp.system.errors import StoreError
from tests.appserver import ARGS, CHROMIUM, serve
from tests.conftest import plain
from tests.gestures import no_exception, open_page, settle, tick_row_with
from ui import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
BAD = "00000000000000ad"

# (what is damaged, the columns of a copy of a good row, what the reason says)
DAMAGE = [
    ("test not JSON", {"test": "{accuracy: 0.9"}, "its test is not valid JSON"),
    ("test of the wrong type", {"test": '{"accuracy": "high", "loss": 1}'}, "its test has no accuracy between 0 and 1"),
    ("test with a 3x3 matrix", {"test": '{"accuracy": 0.5, "loss": 1, "confusion": [[1,0,0],[0,1,0],[0,0,1]]}'}, "10×10"),
    ("progress not JSON", {"progress": "[1, 2"}, "its progress is not valid JSON"),
    ("progress of the wrong type", {"progress": '{"step": "many"}'}, "its progress has no whole-number step"),
    ("config not JSON", {"config": "not json"}, "its config is not valid JSON"),
    ("config from the future", {"config": '{"future_field": 1}'}, "future_field: unknown field"),
    ("config with NaN", {"config": '{"lr": NaN}'}, "lr: must be a number above 0"),
    ("config as bytes", {"config": b"\x80\x81"}, "its config is not text"),
    ("config not UTF-8", {"config": "CAST(x'7b22ff22' AS TEXT)"}, "its config"),
    ("config nested deeply", {"config": "[" * 5000 + "]" * 5000}, "nested too deeply"),
    ("config too large", {"config": " " * (2 << 20)}, "too large"),
    ("unknown status", {"status": "exploded"}, "its status 'exploded' is not one nnapp writes"),
    ("created as text", {"created": "yesterday"}, "its created is not a number"),
    ("checksum not a SHA-256", {"weights_sha256": "../../x"}, "not a SHA-256"),
    ("pid as text", {"pid": "one"}, "its process id is not a number"),
]


@pytest.fixture
def good(store, tiny):
    return train_or_load(tiny, store)


def damage(store: Store, source: str, key: str, columns: dict) -> None:
    """Insert a copy of run `source` under `key` with some columns replaced (a string CAST(...) is SQL)."""
    with sqlite3.connect(store.db_path) as db:
        names = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        values = dict(zip(names, db.execute("SELECT * FROM runs WHERE key=?", (source,)).fetchone(), strict=True))
        values.update(key=key, **columns)
        sql = [v if isinstance(v, str) and v.startswith("CAST(") else "?" for v in values.values()]
        params = [v for v in values.values() if not (isinstance(v, str) and v.startswith("CAST("))]
        db.execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join(sql)})", params)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> bool:
    return err.startswith("nnapp: error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("what, columns, reason", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_one_damaged_row_is_unreadable_and_the_rest_works(good, store, capsys, what, columns, reason):
    damage(store, good.key, BAD, columns)
    runs = {r.key: r for r in store.runs()}
    assert runs[good.key].status == "done" and runs[BAD].status == "unreadable"
    assert reason in runs[BAD].message, runs[BAD].message
    assert store.counts() == {"done": 1, "unreadable": 1}

    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and f"{good.key}  done" in out and f"{BAD}  unreadable" in out and reason in out
    code, out, _ = run_cli(capsys, "show", good.key)
    assert code == 0 and "accuracy" in out
    code, out, _ = run_cli(capsys, "show", BAD)
    assert code == 0 and "[unreadable]" in out and reason in out
    code, _, err = run_cli(capsys, "export", BAD, "--to", str(store.home.parent / "out"))
    assert code == 2 and one_line_error(err) and "unreadable" in err
    code, out, _ = run_cli(capsys, "delete", BAD)
    assert code == 0 and store.get(BAD) is None
    assert store.load_model(good.key)  # the good run is whole


def test_unreadable_rows_with_odd_keys_are_listed_and_deleted(good, store, capsys):
    damage(store, good.key, "../../etc/passwd", {})
    (store.home / "weights" / "keep.safetensors").write_bytes(b"not ours to delete")
    assert store.get("../../etc/passwd").message == "its key is not 16 hex digits"
    code, out, _ = run_cli(capsys, "delete", "../../etc/passwd")
    assert code == 0 and store.get("../../etc/passwd") is None
    assert [r.key for r in store.runs()] == [good.key] and (store.home / "weights" / "keep.safetensors").exists()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_beside_an_unreadable_run(good, store, page):
    damage(store, good.key, BAD, {"config": "not json", "status": "running"})
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES[page].path).run()
    assert not at.exception, at.exception


def test_the_train_page_watching_a_run_that_became_unreadable_says_so(good, store):
    damage(store, good.key, BAD, {"config": "not json", "status": "running"})
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["train"].path).run()
    at.session_state["watch_run"] = BAD  # the run this session launched, damaged since
    at.run()
    assert not at.exception, at.exception
    assert plain(at.error[0].value).startswith(f"Run {BAD} cannot be read: its config is not valid JSON")


@pytest.mark.browser
def test_results_show_an_unreadable_run_and_delete_it(good, store):
    """Shown by key with its reason; deleted after a confirmation in a dialog, by the clicks a person makes."""
    damage(store, good.key, BAD, {"test": "{broken"})
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = BAD  # a link to it
    at.run()
    at.switch_page(PAGES["results"].path).run()
    assert not at.exception, at.exception
    assert plain(at.error[0].value).startswith(f"Run {BAD} cannot be read: its test is not valid JSON")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with serve(store.home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        open_page(page, url, f"results?run={BAD}", "cannot be read")
        page.get_by_role("button", name="Delete this run…").click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for(timeout=30_000)
        assert store.get(BAD) is not None  # asked first
        dialog.get_by_role("button", name="Delete", exact=True).click()
        settle(page)
        no_exception(page)
        assert page.get_by_text(f"Deleted the unreadable run {BAD}.").count() == 1
        assert page.get_by_role("heading", name=default_name(good.config)).count() == 1  # the other run, shown
        assert "unreadable" not in page.get_by_role("combobox", name="Run").input_value()  # and picked
        browser.close()
    assert store.get(BAD) is None and store.get(good.key).status == "done"


@pytest.mark.browser
def test_compare_lists_an_unreadable_run_and_deletes_it(good, store):
    """Listed with its status; ticked, deleted through the dialog in Chromium, by the gestures a person makes."""
    damage(store, good.key, BAD, {"config": '{"lr": "fast"}'})
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["compare"].path).run()
    table = at.dataframe[0].value
    assert dict(zip(table["key"], table["status"], strict=True)) == {good.key: "done", BAD: "unreadable"}
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with serve(store.home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        open_page(page, url, "compare", "Tick one or more rows")
        tick_row_with(page, "runs_table", BAD)
        page.get_by_role("button", name="Delete 1 selected run…").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
        settle(page)
        no_exception(page)
        assert page.get_by_text("Deleted 1 run: unreadable").count() == 1
        browser.close()
    assert store.get(BAD) is None and [r.key for r in store.runs()] == [good.key]


def test_damaged_metrics_predictions_and_drawings_are_left_out(good, store, capsys):
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE epochs SET val_loss='lots', train_loss=NULL WHERE key=?", (good.key,))
        db.execute("UPDATE steps SET loss='x' WHERE key=? AND step % 2 = 0", (good.key,))
        db.execute("UPDATE predictions SET prob=x'00' WHERE key=?", (good.key,))
        db.execute("INSERT INTO drawings (label, pixels, created) VALUES (42, x'00', 0)")
    assert store.predictions(good.key) is None and len(store.drawings()[1]) == 0
    code, out, _ = run_cli(capsys, "show", good.key)
    assert code == 0 and "train loss - " in out and "val loss - " in out
    for page in ("results", "playground"):
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(PAGES[page].path).run()
        assert not at.exception, (page, at.exception)


def test_weights_that_pass_the_checksum_but_are_not_the_network(good, store):
    blob = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "  # a valid, empty safetensors file
    store.weights_path(good.key).write_bytes(blob)
    import hashlib

    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET weights_sha256=? WHERE key=?", (hashlib.sha256(blob).hexdigest(), good.key))
    with pytest.raises(StoreError, match="do not fit the network"):
        store.load_model(good.key)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["playground"].path).run()
    assert not at.exception and plain(at.error[0].value).startswith("This run cannot be used: the weights of run")


@pytest.mark.parametrize(
    "content, says",
    [
        (b"this is not a database" * 100, "is not an SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "runs.sqlite"),
    ],
)
def test_a_file_that_is_not_a_store_is_one_sentence_and_left_alone(home, capsys, content, says):
    home.mkdir(parents=True)
    (home / "runs.sqlite").write_bytes(content)
    code, _, err = run_cli(capsys, "list")
    assert code == 2 and one_line_error(err) and says in err, err
    assert (home / "runs.sqlite").read_bytes() == content  # nothing was overwritten
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and "runs.sqlite" in plain(at.error[0].value)


def test_nnapp_home_pointing_at_a_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "a-file"
    target.write_text("hello")
    for home in (target, target / "runs"):
        monkeypatch.setenv("NNAPP_HOME", str(home))
        code, _, err = run_cli(capsys, "list")
        assert code == 2 and one_line_error(err) and ("is a file, not a folder" in err or "not a folder" in err), err
    assert target.read_text() == "hello"


def as_reader_only(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `cmd` unable to write files it does not own: root gives up its override of file permissions."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot drop the permission override")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--", *cmd]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)


def test_a_read_only_store_lists_and_shows_but_does_not_train(good, store):
    del store  # let go of the store: no connection keeps WAL files around
    home = good_home = Path(os.environ["NNAPP_HOME"])
    read_only(home)
    try:
        env = {**os.environ, "NNAPP_HOME": str(good_home)}
        listing = as_reader_only([sys.executable, "-m", "nnapp", "list"], env=env)
        assert listing.returncode == 0 and good.key in listing.stdout and "read-only" in listing.stderr, listing.stderr
        shown = as_reader_only([sys.executable, "-m", "nnapp", "show", good.key[:6]], env=env)
        assert shown.returncode == 0 and "accuracy" in shown.stdout, shown.stderr
        trained = as_reader_only([sys.executable, "-m", "nnapp", "train", "--set", "seed=5", "--quiet"], env=env)
        assert trained.returncode == 2 and trained.stderr.startswith("nnapp: error:") and "read-only" in trained.stderr
        assert len(trained.stderr.strip().splitlines()) == 1, trained.stderr
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_a_read_only_weights_folder_is_found_before_training(home, tiny):
    Store(home)
    read_only(home / "weights")
    try:
        args = ["--set", "model=mlp", "--set", "hidden=16", "--set", "train_subset=600", "--set", "epochs=1", "--quiet"]
        proc = as_reader_only([sys.executable, "-m", "nnapp", "train", *args], env={**os.environ, "NNAPP_HOME": str(home)})
    finally:
        (home / "weights").chmod(0o755)
    assert proc.returncode == 2 and proc.stderr.startswith("nnapp: error: the run store") and "read-only" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert Store(home).runs() == []


def test_temporary_files_of_killed_writers_are_removed(home):
    store = Store(home)
    weights = home / "weights"
    # A real writer killed between writing its temporary file and renaming it over the target.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import nnapp.system.files as files
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        files.atomic_write(__import__("pathlib").Path({str(weights / "0123456789abcdef.safetensors")!r}), b"x" * 1000)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    (left,) = weights.glob("*.tmp")
    mine = weights / f"0123456789abcdef.safetensors.{os.getpid()}.abc.tmp"  # a live writer's: kept
    mine.write_bytes(b"in progress")
    old = weights / "0123456789abcdef.safetensorsxyz.tmp"  # an older name without a pid, long untouched: removed
    old.write_bytes(b"old")
    os.utime(old, (0, 0))
    Store(home)
    assert not left.exists() and not old.exists() and mine.exists()
    assert store.runs() == []
