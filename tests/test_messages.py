"""Messages that say what happened: `list | head -1` ends quietly, an over-long key prefix is refused as too long,
`export --to` a path under a file says so (before the bundle is made). Images: tests/test_uploads.py."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nnapp.__main__ import main
from nnapp.jobs.runs import train_or_load

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(store, tiny):
    return train_or_load(tiny.replace(epochs=1), store)


def test_list_into_a_reader_that_stops_ends_quietly(run, store, home):
    with sqlite3.connect(store.db_path) as db:  # enough runs that `list` writes more than a pipe holds
        row = db.execute("SELECT * FROM runs WHERE key=?", (run.key,)).fetchone()
        marks = ",".join("?" * len(row))
        db.executemany(f"INSERT INTO runs VALUES ({marks})", [(f"{i:016x}", *row[1:]) for i in range(3000)])
    env = {**os.environ, "NNAPP_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnapp", "list"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().startswith(b"key")  # what `head -1` reads, then it stops reading
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


@pytest.mark.parametrize("command", ["show", "delete", "export", "predict"])
def test_an_over_long_key_prefix_is_refused_as_too_long(run, capsys, command, tmp_path):
    prefix = "a" * 100_000
    extra = {"export": ["--to", str(tmp_path)], "predict": [str(ROOT / "docs" / "screenshot-train.png")]}.get(command, [])
    assert main([command, prefix, *extra]) == 2
    err = capsys.readouterr().err
    assert "(100,000 characters) is too long" in err and len(err) < 200 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("to", ["afile/inside", "afile/x.zip", "afile/sub/x.zip"])
def test_export_to_a_path_under_a_file_says_so(run, tmp_path, capsys, monkeypatch, to):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    assert main(["export", run.key, "--to", to]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnapp: error: afile is a file, not a folder") and "cannot be written under it" in err, err
    assert (tmp_path / "afile").read_text() == "not a folder"
