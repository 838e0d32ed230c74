"""Read-only and full disks, damaged sweeps: export and predict work on a read-only store (a missing not-a-digit
check is made in memory, not written); a full disk under any page's write (import, a saved drawing, a sweep) is
one sentence, never a traceback, and stores nothing half; a damaged sweep.json or journal is one sentence on the
Sweep page and the command line.

A full disk is the operating system's answer ENOSPC to a write, given here by os.fsync (where a real file system
reports a full disk for data written before), and SQLite's "database or disk is full" for the database."""

import errno
import io
import os
import sqlite3
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from nnapp.__main__ import main
from nnapp.engine.presets import PRESETS
from nnapp.jobs.runs import train_or_load
from nnapp.store.database import Database
from nnapp.store.store import Store
from nnapp.sweep.files import save_spec
from nnapp.sweep.spec import SweepSpec, parse_param
from tests.conftest import plain
from tests.digits import render
from tests.test_damaged_store import as_reader_only, read_only
from ui import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGES[name].path).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def run(store, tiny):
    return train_or_load(tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=(), epochs=1), store)


def digit_png(tmp_path: Path) -> Path:
    path = tmp_path / "seven.png"
    Image.fromarray(render(7)).save(path)
    return path


def test_export_and_predict_work_on_a_read_only_store(run, store, tmp_path):
    home = store.home
    del store
    image = digit_png(tmp_path)
    read_only(home)
    try:
        env = {**os.environ, "NNAPP_HOME": str(home)}
        exported = as_reader_only([sys.executable, "-m", "nnapp", "export", run.key, "--to", str(tmp_path / "out")], env=env)
        assert exported.returncode == 0, exported.stderr
        predicted = as_reader_only([sys.executable, "-m", "nnapp", "predict", run.key, str(image)], env=env)
        assert predicted.returncode == 0 and "not-a-digit score" in predicted.stdout, predicted.stderr
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    with zipfile.ZipFile(tmp_path / "out" / f"nnapp-{run.key}.zip") as zf:
        assert "not-a-digit.json" in zf.namelist()  # made in memory for the bundle
    assert not (home / "ood").exists() or not list((home / "ood").iterdir())  # and not written


@pytest.fixture
def full_disk(monkeypatch):
    """Every file nnapp writes whole (atomic_write) meets a full disk."""

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)


def test_a_full_disk_under_an_import_is_one_sentence(run, store, tmp_path, monkeypatch, capsys):
    from nnapp.bundle.export import bundle_bytes

    blob = bundle_bytes(store, run.key)
    other = tmp_path / "other"
    monkeypatch.setenv("NNAPP_HOME", str(other))
    (tmp_path / "run.zip").write_bytes(blob)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["import", str(tmp_path / "run.zip")]) == 2
    err = capsys.readouterr().err
    said = f"cannot write the weights of run {run.key}: {other / 'weights'}/"
    assert err.startswith(f"nnapp: error: {said}") and err.strip().endswith(".safetensors: the disk is full"), err
    at = page("results")
    at.file_uploader(key="import_bundle").upload("run.zip", blob, "application/zip").run()
    assert not at.exception, at.exception
    assert plain(at.error[0].value).startswith(f"Not imported: {said}") and at.error[0].value.endswith("the disk is full")
    monkeypatch.undo()
    assert Store(other).runs() == [] and not list((other / "weights").iterdir())


def test_a_full_disk_under_a_saved_drawing_is_one_sentence(run, monkeypatch):
    at = page("playground")
    buf = io.BytesIO()
    Image.fromarray(render(3)).save(buf, "PNG")
    at.file_uploader(key="upload").upload("three.png", buf.getvalue(), "image/png").run()
    assert not at.exception and at.button(key="save_drawing")
    full = Database(Path("runs.sqlite")).error(sqlite3.OperationalError("database or disk is full"))
    assert "cannot be written: the disk is full" in str(full)  # what SQLite's full disk reads as

    def no_space(self, pixels, label, owner=None):
        raise full

    monkeypatch.setattr(Store, "add_drawing", no_space)
    at.button(key="save_drawing").click().run()
    assert not at.exception, at.exception
    assert plain(at.error[0].value).startswith("Not saved: the run store") and "the disk is full" in at.error[0].value
    assert any("predicted-digit" in m.value for m in at.markdown)  # the rest of the page is still there, its answer too


def test_a_full_disk_under_a_new_sweep_is_one_sentence(home, full_disk):
    at = page("sweep")
    at.button(key="sweep_start").click().run()
    assert not at.exception, at.exception
    (error,) = [plain(e.value) for e in at.error]
    assert error.startswith("The sweep could not be started: ") and error.endswith("sweep.json: the disk is full")


DAMAGE = {
    "sweep.json that is not JSON": ("sweep.json", b"{not json", "is not a sweep nnapp can read"),
    "sweep.json of another shape": ("sweep.json", b'{"name": 3}', "is not a sweep nnapp wrote"),
    "sweep.json not UTF-8": ("sweep.json", b"\xff\xfe\x00", "is not UTF-8 text"),
    "a journal of garbage": ("journal.log", b"\xff\xfe\nnot a journal\n", "the journal of sweep"),
    "a journal without its study": ("journal.log", b'{"op_code": 0, "worker_id": "x"}\n', "the journal of sweep"),
}


@pytest.mark.parametrize("what", DAMAGE)
def test_a_damaged_sweep_is_one_sentence_on_the_page_and_the_command_line(home, capsys, what):
    part, content, says = DAMAGE[what]
    save_spec(home, SweepSpec("damaged", PRESETS["fast"], (parse_param("lr=1e-3,1e-2"),), trials=1, sampler="grid"))
    (home / "sweeps" / "damaged" / part).write_bytes(content)
    assert main(["sweep", "--resume", "damaged", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnapp: error: --resume: ") and says in err and len(err.strip().splitlines()) == 1, err
    at = page("sweep")
    assert not at.exception, at.exception
    assert any(says in plain(e.value) for e in at.error), [e.value for e in at.error]
