"""The not-a-digit check: it flags drawings that are not digits, lets real and drawn digits through, is stored
with its run, works for every architecture, and leaves nnapp the same numbers as a numpy-only script."""

import json

import numpy as np
import pytest
import torch

from nnapp.engine.data import load
from nnapp.engine.models import build_model
from nnapp.jobs.runs import train_or_load
from nnapp.predict import ood
from nnapp.predict.images import preprocess
from nnapp.predict.inference import for_inference, predict, probabilities
from tests.digits import render
from tests.nondigits import nondigits


@pytest.fixture(scope="module")
def fast_model(fast_run):
    store, run = fast_run
    return for_inference(store.load_model(run.key)[0])


def flagged(model, stats, images: np.ndarray) -> np.ndarray:
    return ood.score_numpy(ood.features(model, images), stats) > stats["threshold"]


def test_flags_drawings_that_are_not_digits(fast_model, fast_check):
    """Other shapes, other fonts, other pens than anything the check trained on: most are flagged."""
    items = nondigits()
    digits = np.stack([np.round(preprocess(image).digit * 255).astype(np.uint8) for _, image in items])
    hits = flagged(fast_model, fast_check, digits)
    assert len(items) > 300
    assert hits.mean() >= 0.8, sorted({name.split(" pen")[0] for (name, _), hit in zip(items, hits, strict=True) if not hit})


def test_lets_mnist_test_digits_through(fast_model, fast_check):
    hits = flagged(fast_model, fast_check, load("mnist").test_x.numpy())
    assert hits.mean() <= 0.01, hits.mean()
    assert fast_check["rates"]["test"] == pytest.approx(hits.mean(), abs=1e-4)  # what Results shows


PLACES = [
    dict(box=(60, 40, 160, 200), width=18),
    dict(box=(10, 10, 70, 90), width=8),
    dict(box=(150, 120, 110, 150), width=14),
    dict(box=(20, 10, 240, 260), width=28),
    dict(box=(90, 60, 90, 120), width=4),
]


def test_lets_drawn_digits_through(fast_model, fast_check):
    """Digits drawn on a canvas look unlike MNIST in small ways (even pens, clean ends); they are still digits."""
    verdicts = {
        (d, i): ood.judge(fast_model, preprocess(render(d, **p)).digit, fast_check)
        for d in range(10)
        for i, p in enumerate(PLACES)
    }
    rejected = [k for k, v in verdicts.items() if not v.is_digit]
    assert len(rejected) <= 2, rejected
    assert sum(v.digit == k[0] for k, v in verdicts.items()) >= 45


def test_judge_gives_the_canvas_paths_probabilities_and_the_stored_score(fast_model, fast_check):
    image = render(4)
    stages, probs = predict(fast_model, image)
    verdict = ood.judge(fast_model, stages.digit, fast_check)
    assert np.allclose(verdict.probabilities, probs, atol=1e-6)
    assert np.allclose(verdict.probabilities, probabilities(fast_model, stages.digit), atol=1e-6)
    score = ood.score_numpy(ood.features(fast_model, np.round(stages.digit[None] * 255).astype(np.uint8)), fast_check)[0]
    assert verdict.score == pytest.approx(score, abs=0.05)  # the same digit, rounded to uint8 pixels
    assert ood.judge(fast_model, stages.digit, None).is_digit  # no check: no verdict against it


def test_the_check_is_stored_with_the_run_and_made_once(fast_run, fast_check):
    store, run = fast_run
    stored = ood.load_stats(store, run.key)
    for k in ood.ARRAYS:
        assert np.array_equal(stored[k], fast_check[k])
    assert stored["threshold"] == fast_check["threshold"] and stored["rates"] == fast_check["rates"]
    assert 0 < fast_check["rates"]["validation"] <= 0.01
    assert ood.ensure(store, run.key)["seconds"] == fast_check["seconds"]  # served, not made again


def test_a_check_made_for_other_weights_is_made_again(store, tiny):
    run = train_or_load(tiny, store)
    first = ood.ensure(store, run.key)
    assert ood.load_stats(store, run.key) is not None
    with store._db() as db:  # as if the run had been trained again: its weights' checksum changes
        db.execute("UPDATE runs SET weights_sha256='0' WHERE key=?", (run.key,))
    assert ood.load_stats(store, run.key) is None
    ood.path(store, run.key).write_bytes(b"garbage")  # a damaged file is made again, never an error
    assert ood.load_stats(store, run.key) is None
    store.delete(run.key)
    assert not list((store.home / "ood").glob(f"{run.key}.*"))
    assert first["threshold"] > -np.inf


@pytest.mark.parametrize(
    "changes",
    [
        dict(model="mlp", hidden=(32, 16), batch_norm=True, dropout=0.2),
        dict(model="cnn", conv=((4, 3, 2), (8, 3, 2)), hidden=(), activation="gelu"),
        dict(model="cnn", conv=((4, 5, 1),), padding="valid", hidden=(16,), batch_norm=True, activation="tanh"),
    ],
)
def test_every_architecture_gets_a_check(store, tiny, changes):
    """Runs trained before the check existed, of any shape the Train page allows, get one when first asked."""
    run = train_or_load(tiny.replace(**changes), store)
    assert ood.load_stats(store, run.key) is None
    stats = ood.ensure(store, run.key)
    assert np.isfinite(stats["threshold"]) and set(stats["rates"]) >= {"validation", "test", "heldout"}
    model = store.load_model(run.key)[0]
    x = torch.rand(5, 1, 28, 28)
    logits, feats = ood.WithFeatures(model)(x)
    fast_logits, fast_feats = ood.run_with_features(for_inference(model).steps, x)
    assert torch.allclose(logits, fast_logits, atol=1e-5) and torch.allclose(feats, fast_feats, atol=1e-5)
    assert feats.shape[1] == stats["w1"].shape[0]


def test_no_check_for_other_data_sets(store, tiny):
    assert not ood.available(tiny.replace(dataset="fashion_mnist"))
    assert ood.available(tiny)


def test_the_bundle_entry_scores_like_the_app_with_numpy_alone(fast_run, fast_model, fast_check):
    """What an export needs: an exported program returning (logits, features), and the JSON with score_numpy."""
    store, run = fast_run
    entry = json.loads(json.dumps(ood.bundle_entry(store, run.key)))
    program = torch.export.export(ood.WithFeatures(store.load_model(run.key)[0]), (torch.zeros(1, 1, 28, 28),))
    for image in (render(3), nondigits()[0][1]):
        digit = preprocess(image).digit
        logits, feats = program.module()(torch.from_numpy(digit).reshape(1, 1, 28, 28))
        score = float(ood.score_numpy(feats.detach().numpy(), entry)[0])
        verdict = ood.judge(fast_model, digit, fast_check)
        assert score == pytest.approx(verdict.score, abs=1e-3)
        assert (score > entry["threshold"]) == (not verdict.is_digit)
        assert int(logits.argmax()) == verdict.digit


def test_the_head_leaves_the_callers_random_state_and_threads_alone():
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    ood.fit_head(np.random.rand(50, 8).astype(np.float32), np.random.rand(30, 8).astype(np.float32) + 1)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)


def test_untrained_network_features_have_the_documented_layout():
    model = build_model(ood.RunConfig(model="cnn", conv=((4, 3, 2), (6, 3, 2)), hidden=(5,))).eval()
    _, feats = ood.WithFeatures(model)(torch.zeros(2, 1, 28, 28))
    assert feats.shape == (2, 4 * 4 + 6 * 4 + 5 + 10)
