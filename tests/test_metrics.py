import pytest
import torch

from nnapp.metrics import report


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
