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


def test_an_evaluation_in_batches_gives_the_networks_own_logits():
    from nnapp.engine.config import RunConfig
    from nnapp.engine.metrics import predict_logits, to_pixels
    from nnapp.engine.models import build_model

    torch.manual_seed(0)
    model = _trained_like(build_model(RunConfig(model="cnn", conv=((8, 3, 2), (16, 5, 2)), hidden=(32,), batch_norm=True)))
    x = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)  # more than one evaluation batch
    with torch.inference_mode():
        expected = model(to_pixels(x, torch.device("cpu")))
    assert torch.allclose(predict_logits(model, x, torch.device("cpu")), expected, atol=1e-5, rtol=1e-5)
