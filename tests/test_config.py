import json

import pytest

from nnapp.engine.checks import check
from nnapp.engine.config import ConfigError, RunConfig, parse_value
from nnapp.engine.presets import PRESETS


def test_default_config_is_valid():
    assert check(RunConfig()).problems == {}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    assert check(PRESETS[name]).problems == {}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": 0.0}, "lr"),
        ({"activation": "swish"}, "activation"),
        ({"model": "rnn"}, "model"),
        ({"model": "mlp", "hidden": ()}, "hidden"),
        ({"conv": ()}, "conv"),
        ({"conv": ((8, 29, 1),)}, "conv"),  # kernel bigger than the 28×28 map
        ({"conv": ((8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 3, 2))}, "conv"),  # map shrinks below the pool
        ({"conv": ((8, 4, 2),)}, "conv"),  # even kernel
        ({"padding": "valid", "conv": ((8, 9, 2), (8, 11, 1))}, "conv"),  # 28 -> 20 -> 10: kernel 11 too big
        ({"batch_size": 0}, "batch_size"),
        ({"train_subset": 100, "batch_size": 500}, "batch_size"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"dropout": 1.0}, "dropout"),
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"schedule": "warm"}, "schedule"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": "mse", "label_smoothing": 0.1}, "label_smoothing"),
        ({"precision": "fp8"}, "precision"),
        ({"dataset": "cifar"}, "dataset"),
        ({"patience": -1}, "patience"),
    ],
)
def test_validate_names_the_field(changes, field):
    assert field in RunConfig().replace(**changes).validate()


def test_validate_reports_every_problem_at_once():
    problems = RunConfig(lr=-1, epochs=0, activation="nope").validate()
    assert {"lr", "epochs", "activation"} <= set(problems)


def test_round_trip_through_json():
    for config in [RunConfig(), *PRESETS.values(), RunConfig(model="mlp", hidden=(5, 6, 7), augment=True)]:
        again = RunConfig.from_dict(json.loads(config.to_json()))
        assert again == config
        assert again.key() == config.key()


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"lr": 0.1, "learning_rate": 0.1, "layers": 3})
    assert set(err.value.problems) == {"learning_rate", "layers"}


def test_wrong_types_are_named():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"epochs": "three", "hidden": "wide", "augment": 1})
    assert set(err.value.problems) == {"epochs", "hidden", "augment"}


def test_key_is_stable_and_changes_with_any_field():
    base = RunConfig()
    assert base.key() == RunConfig().key()
    assert len(base.key()) == 16
    keys = {base.key(), base.replace(seed=1).key(), base.replace(lr=2e-3).key(), base.replace(dataset="kmnist").key()}
    assert len(keys) == 4


def test_key_covers_engine_version(monkeypatch):
    import nnapp.engine.config

    before = RunConfig().key()
    monkeypatch.setattr(nnapp.engine.config, "ENGINE_VERSION", "test")
    assert RunConfig().key() != before


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RunConfig().lr = 1.0  # type: ignore[misc]


def test_overrides_parse_short_forms():
    config = RunConfig().with_overrides(["hidden=64,32", "conv=8:5:2,16:3:1", "augment=true", "lr=0.01", "activation=gelu"])
    assert config.hidden == (64, 32)
    assert config.conv == ((8, 5, 2), (16, 3, 1))
    assert config.augment is True and config.lr == 0.01 and config.activation == "gelu"
    assert parse_value("hidden", "none") == []


def test_overrides_reject_unknown_and_malformed():
    with pytest.raises(ConfigError) as err:
        RunConfig().with_overrides(["nope=1", "lr"])
    assert "nope" in err.value.problems and "lr" in err.value.problems
    with pytest.raises(ConfigError) as err:
        RunConfig().with_overrides(["epochs=many"])
    assert "epochs" in err.value.problems
