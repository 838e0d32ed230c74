import pytest
import torch

from nnapp.engine.arch import parameter_count as arch_parameter_count
from nnapp.engine.arch import plan, summary, summary_text
from nnapp.engine.config import RunConfig
from nnapp.engine.models import build_model, parameter_count
from nnapp.engine.presets import PRESETS
from nnapp.engine.registry import ACTIVATIONS

CONFIGS = [
    RunConfig(model="mlp", hidden=(64, 64)),
    RunConfig(model="mlp", hidden=(10,), batch_norm=True, dropout=0.5),
    RunConfig(model="cnn", conv=((8, 5, 2),), hidden=()),
    RunConfig(model="cnn", conv=((8, 3, 1), (8, 3, 2), (16, 3, 2), (16, 3, 2)), hidden=(32,), batch_norm=True),
    RunConfig(model="cnn", conv=((32, 3, 2), (64, 3, 2)), padding="valid", hidden=(128,)),
    RunConfig(model="cnn", conv=((4, 7, 3),), padding="valid"),
    *[RunConfig(activation=a) for a in ACTIVATIONS],
    *PRESETS.values(),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.describe() + f" {c.activation} {c.padding}")
def test_output_shape(config):
    assert config.validate() == {}
    model = build_model(config)
    out = model.train()(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


def test_seed_cnn_flatten_is_measured():
    # The seed hand-wrote 64*7*7, but two valid 3x3 convs with 2x2 pools leave a 5x5 map.
    model = build_model(PRESETS["seed-cnn"])
    first_linear = next(m for m in model if isinstance(m, torch.nn.Linear))
    assert first_linear.in_features == 64 * 5 * 5


def test_seed_mlp_parameter_count():
    # 784*64+64 + 64*64+64 + 64*10+10
    assert parameter_count(build_model(PRESETS["seed-mlp"])) == 55_050


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.describe() + f" {c.activation} {c.padding}")
def test_plan_is_what_torch_builds(config):
    """The arithmetic plan against the modules: every layer's output shape and parameter count."""
    model = build_model(config).eval()
    x = torch.zeros(2, 1, 28, 28)
    layers = plan(config)
    assert len(layers) == len(model)
    for layer, module in zip(layers, model, strict=True):
        x = module(x)
        assert tuple(x.shape[1:]) == layer.shape, (layer, x.shape)
        assert sum(p.numel() for p in module.parameters()) == layer.params, layer
    assert arch_parameter_count(config) == parameter_count(model)


def test_summary_lists_every_layer():
    config = PRESETS["seed-cnn"]
    rows = summary(config)
    assert len(rows) == len(build_model(config))
    assert rows[-1]["output"] == "10" and rows[1]["layer"].startswith("Conv2d(1, 32, kernel_size=3")
    assert sum(r["params"] for r in rows) == parameter_count(build_model(config))
    assert "total parameters: 225,034" in summary_text(config)
