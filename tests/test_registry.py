"""Every registry entry works end to end, and everything that offers a choice reads the registries."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.models import build_model
from nnapp.engine.registry import ACTIVATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULES, UnknownName, resolve
from nnapp.engine.train import fit, make_optimizer, make_schedule

ROOT = Path(__file__).resolve().parent.parent


def test_an_unknown_name_is_an_error_listing_the_known_ones():
    known = ", ".join(OPTIMIZERS.names())  # the table's own names: a new entry needs no change here
    assert known.startswith("sgd, adam, adamw")
    with pytest.raises(UnknownName, match=f"unknown optimizer 'lbfgs'; choose from {known}$"):
        OPTIMIZERS["lbfgs"]
    problems = RunConfig(optimizer="lbfgs", schedule="warm", activation="swish", loss="hinge", dataset="cifar").validate()
    assert set(problems) == {"optimizer", "schedule", "activation", "loss", "dataset"}
    assert problems["optimizer"] == f"unknown value 'lbfgs'; choose from {known}"


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_trains(tiny, name):
    config = tiny.replace(optimizer=name, lr=OPTIMIZERS[name].lr, epochs=2)
    model = torch.nn.Linear(3, 1)
    optimizer = make_optimizer(config, model, torch.device("cpu"))
    assert type(optimizer).__name__ == OPTIMIZERS[name].cls.rpartition(".")[2]
    assert ("momentum" in optimizer.param_groups[0]) == OPTIMIZERS[name].momentum
    assert fit(config).test["accuracy"] > 0.7


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_gives_a_rate_at_every_step(tiny, name):
    config = tiny.replace(schedule=name, lr=0.1, epochs=3)
    schedule = make_schedule(config, steps_per_epoch=10)
    if schedule is None:
        return  # constant: no per-step update
    rates = [schedule(s)[0] for s in range(30)]
    assert all(0 < r <= 0.1 + 1e-12 for r in rates) and max(rates) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_every_activation_builds_and_trains(tiny, name):
    module = ACTIVATIONS[name].build()
    assert isinstance(module, torch.nn.Module) and module(torch.zeros(2)).shape == (2,)
    assert fit(tiny.replace(activation=name, epochs=2)).test["accuracy"] > 0.6


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_is_small_for_right_answers_and_large_for_wrong_ones(tiny, name):
    labels = torch.tensor([0, 1, 2])
    right, wrong = torch.eye(10)[:3] * 10, torch.eye(10)[[3, 4, 5]] * 10
    assert LOSSES[name](right, labels) < LOSSES[name](wrong, labels)
    smoothing = 0.1 if LOSSES[name].smoothing else 0.0
    assert ("label_smoothing" in tiny.replace(loss=name, label_smoothing=0.1).validate()) != LOSSES[name].smoothing
    assert math.isfinite(fit(tiny.replace(loss=name, label_smoothing=smoothing, epochs=1)).test["loss"])


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_data_set_is_described_whole(name):
    spec = DATASETS[name]
    means, stds = (spec.mean, spec.std) if spec.channels > 1 else ((spec.mean,), (spec.std,))
    assert len(spec.classes) == 10 and len(means) == len(stds) == spec.channels in (1, 3)
    assert all(0 < v < 1 for v in (*means, *stds))
    assert spec.source.partition(":")[0] in ("bundled", "torchvision")
    assert RunConfig(dataset=name).train_images() == spec.train_size - spec.train_size // 10
    assert build_model(RunConfig(dataset=name))(torch.zeros(2, *spec.input_shape)).shape == (2, 10)
    if not spec.downloads:
        images = load(name)
        assert images.train_x.shape == (spec.train_size, spec.image_size, spec.image_size)
        assert images.test_x.shape[0] == spec.test_size


def test_identities_are_unique_and_part_of_the_key():
    assert len({spec.identity for _, spec in DATASETS.items()}) == len(DATASETS)
    assert RunConfig(dataset="mnist").key() != RunConfig(dataset="kmnist").key()


def test_the_cli_help_lists_the_registries():
    out = subprocess.run([sys.executable, "-m", "nnapp", "train", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    for registry in (OPTIMIZERS, SCHEDULES, ACTIVATIONS, LOSSES, DATASETS):
        assert ", ".join(registry.names()) in out


def test_the_train_page_offers_the_registries(home):
    from streamlit.testing.v1 import AppTest

    from ui import PAGES

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page(PAGES["train"].path).run()
    for field, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("activation", ACTIVATIONS), ("loss", LOSSES)):
        assert at.selectbox(key=f"cfg_{field}").options == list(registry.names())
    assert at.selectbox(key="cfg_dataset").options == [spec.title for _, spec in DATASETS.items()]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_updates_to_the_bit_as_torchs_own_class(name, fused):
    """nnapp's optimisers are torch's without the torch.compile wrappers: the same weights after each step."""
    spec = OPTIMIZERS[name]
    stock_cls = resolve(spec.cls)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)))
    ours = spec.build(models[0].parameters(), 0.05, 0.01, 0.9, fused)
    kwargs = {"lr": 0.05, "weight_decay": 0.01, **({"momentum": 0.9} if spec.momentum else {})}
    stock = stock_cls(models[1].parameters(), **kwargs, **({"fused": True} if fused and spec.fused else {}))
    assert type(ours) is not stock_cls and isinstance(ours, stock_cls)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for step in range(5):
        for model, optimizer in zip(models, (ours, stock), strict=True):
            optimizer.param_groups[0]["lr"] = 0.05 / (step + 1)  # as nnapp's schedules set it
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
            assert torch.equal(a, b)


def test_training_does_not_import_torch_dynamo():
    """Building torch's optimisers imports torch._dynamo (1.5-2 s per training process); nnapp's do not,
    nor does the learning-rate finder, which saves and restores the optimiser's state, nor the not-a-digit
    check's head, trained in each job's process after its run."""
    code = (
        "import sys\n"
        "from nnapp.engine.presets import PRESETS\n"
        "from nnapp.engine.train import fit\n"
        "result = fit(PRESETS['fast'].replace(train_subset=600, val_fraction=0.1, epochs=2, optimizer='sgd', lr=0.05))\n"
        "fit(PRESETS['fast'].replace(train_subset=600, val_fraction=0.1))\n"
        "from nnapp.engine.data import load, split\n"
        "from nnapp.inside.lrfind import lr_find\n"
        "assert lr_find(PRESETS['fast'], split(load('mnist'), 0.1, 0, 600), steps=20).lrs\n"
        "import numpy as np\n"
        "from nnapp.predict.ood import fit_head\n"
        "fit_head(np.random.rand(64, 8).astype(np.float32), np.random.rand(64, 8).astype(np.float32))\n"
        "assert result.status == 'done', result.status\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
