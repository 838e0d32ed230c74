import os

import pytest

from nnapp.engine.config import RunConfig


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh run store for each test."""
    monkeypatch.setenv("NNAPP_HOME", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def store(home):
    from nnapp.store.store import Store

    return Store(home)


# A few hundred real MNIST digits: trains in about a second on 2 cores.
TINY = RunConfig(
    model="mlp",
    hidden=(32,),
    train_subset=600,
    val_fraction=0.2,
    batch_size=32,
    epochs=3,
    lr=3e-3,
    schedule="constant",
    optimizer="adam",
)


@pytest.fixture
def tiny():
    return TINY


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory):
    """The `fast` preset trained once per session on the real MNIST (about 5 s): (store, run)."""
    from nnapp.engine.presets import PRESETS
    from nnapp.jobs.runs import train_or_load
    from nnapp.store.store import Store

    store = Store(tmp_path_factory.mktemp("fast-runs"))
    return store, train_or_load(PRESETS["fast"], store)


@pytest.fixture(scope="session")
def fast_check(fast_run):
    """The fast run's not-a-digit check, made once per session (a few seconds): its statistics."""
    from nnapp.predict import ood

    store, run = fast_run
    return ood.ensure(store, run.key)


# The CLI's way to a few hundred digits (the default preset as a small MLP), for CLI tests and sweeps.
TINY_SET = [
    "--set",
    "model=mlp",
    "--set",
    "hidden=32",
    "--set",
    "train_subset=600",
    "--set",
    "epochs=2",
    "--set",
    "batch_size=32",
]


def plain(markdown: str) -> str:
    """What a reader sees of Markdown that ui.escaped made: the text without its backslash escapes and the
    invisible word joiners that keep addresses from being links."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, one per test module (the module's tests are skipped without it)."""
    from tests.appserver import ARGS, CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page of its own (a fresh context) at 1400×1000."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()
