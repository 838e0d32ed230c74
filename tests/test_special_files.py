"""Special files where nnapp expects a file: a FIFO, a device or a folder given as an image, a config or a bundle,
or found in place of a run's weights or a sweep's files. Each is refused in one sentence before anything is
read (a FIFO is never waited on, /dev/zero never read), and a read takes what a file holds, never its limit."""

import contextlib
import os
import re
import signal
import tracemalloc
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnapp.__main__ import main
from nnapp.jobs.runs import train_or_load
from nnapp.system.errors import StoreError
from nnapp.system.files import UnreadableFile, read_regular
from tests.conftest import plain
from ui import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SECONDS = 60  # far beyond what any of these takes; a read that waits on a FIFO fails the test instead of hanging it


@contextlib.contextmanager
def within(seconds: int = SECONDS):
    """Fail with TimeoutError where the block waits longer (SIGALRM interrupts a blocking open or read)."""

    def expired(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s: a special file was read")

    before = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def special(tmp_path: Path, kind: str) -> Path:
    """A FIFO, a device (/dev/zero, through a link with an ordinary name) or a folder, named like a file."""
    path = tmp_path / f"special-{kind}.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


KINDS = ("fifo", "device", "folder")
SAYS = {"fifo": "it is a FIFO (named pipe), not a regular file", "device": "it is a device", "folder": "it is a folder"}


def cli(capsys, *args) -> tuple[int, str]:
    with within():
        code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def run(store, tiny):
    return train_or_load(tiny.replace(epochs=1), store)


@pytest.mark.parametrize("kind", KINDS)
def test_special_files_named_on_the_command_line_are_refused_before_reading(run, tmp_path, capsys, kind):
    path = str(special(tmp_path, kind))
    commands = [
        ("predict", run.key, path),
        ("train", "--config", path),
        ("lr-find", "--config", path),
        ("import", path),
        ("sweep", "--config", path, "--param", "lr=1e-3,1e-2"),
    ]
    for command in commands:
        code, said = cli(capsys, *command)
        assert code == 2 and said.startswith("nnapp: error:") and len(said.strip().splitlines()) == 1, (command, said)
        assert SAYS[kind] in said, (command, said)


@pytest.mark.parametrize("kind", KINDS)
def test_a_special_file_in_place_of_the_weights_is_refused_everywhere(run, store, tmp_path, capsys, kind):
    weights = store.weights_path(run.key)
    weights.unlink()
    made = special(tmp_path, kind)
    if kind == "folder":
        weights.mkdir()
    else:
        os.rename(made, weights)
    with within(), pytest.raises(StoreError, match=f"the weights of run {run.key} cannot be read: .*{re.escape(SAYS[kind])}"):
        store.load_model(run.key)
    for command in (
        ("export", run.key, "--to", str(tmp_path / "out")),
        ("predict", run.key, str(ROOT / "docs" / "screenshot-train.png")),
    ):
        code, said = cli(capsys, *command)
        last = said.strip().splitlines()[-1]  # predict first says it makes the not-a-digit check
        assert code == 2 and last.startswith("nnapp: error:") and SAYS[kind] in last and said.count("error") == 1, (command, said)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    with within():
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(PAGES["results"].path).run()
    assert not at.exception, at.exception
    assert any(SAYS[kind] in plain(e.value) for e in [*at.error, *at.warning]), [e.value for e in [*at.error, *at.warning]]


def test_a_special_file_as_a_sweeps_files_is_one_sentence(store, tmp_path, capsys):
    for name, part in (("piped", "sweep.json"), ("journalled", "journal.log")):
        folder = store.home / "sweeps" / name
        folder.mkdir(parents=True)
        if part == "journal.log":
            (folder / "sweep.json").write_text(
                '{"name": "journalled", "base": {}, "params": ["lr=1e-3,1e-2"], "trials": 2, "parallel": 1, "sampler": '
                '"grid", "pruner": "none", "objective": "val_acc", "seed": 0, "ray": ""}'
            )
            (folder / part).symlink_to("/dev/zero")
        else:
            os.mkfifo(folder / part)
        code, said = cli(capsys, "sweep", "--resume", name, "--trials", "1")
        assert code == 2 and "not a regular file" in said and len(said.strip().splitlines()) == 1, said


def test_a_read_takes_what_the_file_holds_not_its_limit(tmp_path):
    """`import` (and every bounded read) allocates the file's size, not the 1 GiB a bundle may be."""
    path = tmp_path / "small.zip"
    path.write_bytes(b"x" * 100_000)
    tracemalloc.start()
    try:
        assert len(read_regular(path, 1 << 30)) == 100_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak:,} bytes allocated to read 100 KB"
    with pytest.raises(UnreadableFile, match="larger than 64 KiB"):
        read_regular(path, 64 << 10)
