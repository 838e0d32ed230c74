import pytest
import torch

from nnapp.engine.metrics import report


def test_per_class_scores_against_a_hand_made_confusion_matrix():
    # true:      0  0  0  1  1  2  2  2  2    (class 3: never seen, never predicted)
    # predicted: 0  0  1  1  2  2  2  2  0
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2, 0])
    r = report(y, pred, classes=4)
    assert r["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0]]
    # precision = diagonal / column sum; recall = diagonal / row sum; F1 their harmonic mean
    assert r["precision"] == pytest.approx([2 / 3, 1 / 2, 3 / 4, 0])
    assert r["recall"] == pytest.approx([2 / 3, 1 / 2, 3 / 4, 0])
    assert r["f1"] == pytest.approx([2 / 3, 1 / 2, 3 / 4, 0])


def test_precision_and_recall_differ_where_errors_are_one_sided():
    y = torch.tensor([0, 0, 0, 0, 1])
    pred = torch.tensor([0, 0, 1, 1, 1])
    r = report(y, pred, classes=2)
    assert r["confusion"] == [[2, 2], [0, 1]]
    assert r["precision"] == pytest.approx([1.0, 1 / 3])
    assert r["recall"] == pytest.approx([0.5, 1.0])
    assert r["f1"] == pytest.approx([2 * 0.5 / 1.5, 2 * (1 / 3) / (4 / 3)])


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Batch norm statistics away from their start, so that eval mode's normalisation does something."""
    gen = torch.Generator().manual_seed(1)
    for layer in model:
        if isinstance(layer, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            layer.running_mean.copy_(torch.rand(layer.num_features, generator=gen) - 0.5)
            layer.running_var.copy_(torch.rand(layer.num_features, generator=gen) + 0.5)
            layer.weight.data.copy_(torch.rand(layer.num_features, generator=gen) + 0.5)
    return model.eval()


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize(
    "layers",
    [dict(conv=((8, 3, 2), (16, 5, 2)), batch_norm=True, dropout=0.2), dict(conv=((8, 3, 1), (8, 3, 2)), padding="valid")],
)
def test_a_cpu_evaluation_gives_the_networks_own_logits(activation, layers):
    """Evaluation runs a CNN's convolutions, pooling, batch norm and activations in oneDNN's layout: the
    logits are the network's own, to float rounding, for every activation (Leaky ReLU stops the span)."""
    from nnapp.engine.config import RunConfig
    from nnapp.engine.metrics import onednn_span, predict_logits, to_pixels
    from nnapp.engine.models import build_model

    torch.manual_seed(0)
    config = RunConfig(model="cnn", hidden=(32,), activation=activation, **layers)
    model = _trained_like(build_model(config).to(memory_format=torch.channels_last))
    x = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)  # more than one evaluation batch
    with torch.inference_mode():
        expected = model(to_pixels(x, torch.device("cpu")))
    got = predict_logits(model, x, torch.device("cpu"))
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    span = onednn_span(model)
    if torch.backends.mkldnn.is_available():
        start, end = span
        assert isinstance(model[start], torch.nn.Conv2d)
        assert end == start + 1 if activation == "leaky_relu" and layers.get("padding") == "valid" else end > start + 2


def test_the_fast_presets_whole_convolutional_body_runs_in_onednns_layout():
    from nnapp.engine.metrics import onednn_span
    from nnapp.engine.models import build_model
    from nnapp.engine.presets import PRESETS

    model = build_model(PRESETS["fast"])
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch")
    start, end = onednn_span(model)
    assert [type(layer).__name__ for layer in model[start:end]] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    assert isinstance(model[end], torch.nn.Flatten)
    assert onednn_span(build_model(PRESETS["seed-mlp"])) is None


@pytest.mark.parametrize(
    "unusual, span",
    [
        (lambda: torch.nn.Conv2d(1, 8, 4, padding="same"), None),  # even kernel: torch pads one side more
        (lambda: torch.nn.Conv2d(1, 8, 3, padding="valid"), None),
        (lambda: torch.nn.Conv2d(1, 8, 3, padding="same", dilation=2), (0, 3)),
        (lambda: torch.nn.Conv2d(1, 8, 3, padding=1, padding_mode="reflect"), None),
        (lambda: torch.nn.GELU(approximate="tanh"), (0, 1)),
        (lambda: torch.nn.BatchNorm2d(8, affine=False), (0, 1)),
        (lambda: torch.nn.MaxPool2d(2, dilation=2), (0, 1)),
        (lambda: torch.nn.MaxPool2d(3, 2, ceil_mode=True), (0, 3)),
    ],
)
def test_layers_onednn_would_run_differently_stay_on_torchs_kernels(unusual, span):
    """A network built by hand (not by the app's builder) keeps its exact outputs: a layer that oneDNN's
    kernels would run otherwise than torch ends the span, or leaves no span at all."""
    from nnapp.engine.metrics import onednn_span, predict_logits, to_pixels

    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch")
    torch.manual_seed(0)
    layer = unusual()
    body = [layer, torch.nn.ReLU()] if isinstance(layer, torch.nn.Conv2d) else [torch.nn.Conv2d(1, 8, 3, padding=1), layer]
    model = torch.nn.Sequential(*body, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    x = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)
    with torch.inference_mode():
        expected = model.eval()(to_pixels(x, torch.device("cpu")))
    assert onednn_span(model) == span
    assert torch.allclose(predict_logits(model, x, torch.device("cpu")), expected, atol=1e-5, rtol=1e-5)
