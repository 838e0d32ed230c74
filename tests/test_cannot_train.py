"""Configs whose every field is valid but whose training could not run are refused before anything runs, with a
sentence naming the field, on the command line, by the job manager and on the Train page (Launch disabled):
batch norm on a batch of one, and init_from a run that is missing, has no weights, or has another network."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nnapp.__main__ import main
from nnapp.engine.checks import check
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.states import Status
from nnapp.jobs.manager import JobManager
from nnapp.jobs.runs import train_or_load
from tests.conftest import TINY, plain
from tests.test_claims import config_args
from ui import PAGES

APP = str(Path(__file__).resolve().parent.parent / "app.py")

ONE = dict(batch_norm=True, batch_size=1, train_subset=60, epochs=1)
SINGLE_VALUES = {  # each with batch norm on a layer that sees one value per channel in a batch of one
    "an MLP": RunConfig(model="mlp", hidden=(16,), **ONE),
    "a CNN's dense head": RunConfig(model="cnn", conv=((4, 3, 2),), hidden=(8,), **ONE),
    "a CNN down to 1×1 maps": RunConfig(model="cnn", conv=((4, 3, 2), (4, 3, 2), (4, 3, 2), (4, 3, 2)), hidden=(), **ONE),
}


@pytest.mark.parametrize("name", SINGLE_VALUES)
def test_batch_norm_on_a_batch_of_one_is_refused_before_training(store, capsys, name):
    config = SINGLE_VALUES[name]
    assert config.validate() == {}  # each field is fine alone and together
    problem = check(config).problems["batch_size"]
    assert problem.startswith("batch norm needs more than one value per channel in a batch") and "at least 2" in problem
    code = main(["train", "--quiet", *config_args(config)])
    err = capsys.readouterr().err
    assert code == 2 and "batch_size: batch norm needs more than one value" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="batch_size"):
        JobManager(store, workers=0).submit(config)  # refused before a job is made
    assert check(config.replace(batch_size=2)).problems == {}


def test_batch_norm_on_a_batch_of_one_that_has_maps_to_normalise_trains(store):
    """Not refused where the training runs: batch norm over a feature map has many values per channel."""
    config = RunConfig(model="cnn", conv=((4, 3, 2),), hidden=(), **ONE)
    assert check(config).problems == {}
    assert train_or_load(config, store).status == Status.DONE


def test_the_train_page_explains_it_and_disables_launch(home):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["train"].path).run()
    at.checkbox(key="cfg_batch_norm").check().run()
    at.number_input(key="cfg_batch_size").set_value(1).run()
    assert not at.exception, at.exception
    assert any(plain(e.value).startswith("batch norm needs more than one value per channel") for e in at.error)
    assert at.button(key="launch").disabled


@pytest.fixture
def parent(store):
    return train_or_load(TINY.replace(epochs=1), store)


def test_init_from_a_run_that_cannot_be_started_from_is_refused(store, parent, capsys):
    failed_key = TINY.replace(epochs=1, seed=5).key()
    store.create(TINY.replace(epochs=1, seed=5), status=Status.FAILED)
    cases = {
        "0123456789abcdef": "there is no run 0123456789abcdef in this store to start from",
        failed_key: f"run {failed_key} has no weights to start from (it is failed)",
        parent.key: f"run {parent.key}'s network differs from this one at its layer 2: Linear(784, 32, bias=True) there, "
        "Linear(784, 64, bias=True) here",
    }
    for key, says in cases.items():
        child = TINY.replace(init_from=key, hidden=(64,) if key == parent.key else TINY.hidden)
        assert child.validate() == {} and check(child).problems == {}  # without the store, nothing to see
        assert check(child, store.get).problems == {"init_from": says}
        code = main(["train", "--quiet", *config_args(child)])
        err = capsys.readouterr().err
        assert code == 2 and f"init_from: {says}" in err and len(err.strip().splitlines()) == 1, err
        assert store.get(child.key()) is None  # nothing was queued, nothing ran
        with pytest.raises(ConfigError, match="init_from"):
            JobManager(store, workers=0).submit(child)


def test_init_from_a_run_of_the_same_network_trains(store, parent):
    child = TINY.replace(init_from=parent.key, epochs=1, lr=1e-3)
    assert check(child, store.get).problems == {}
    run = train_or_load(child, store)
    assert run.status == Status.DONE and run.parent == parent.key
