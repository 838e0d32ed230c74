"""Inside the network: feature maps and hooks, dead units, weight and gradient histograms, the projector."""

import numpy as np
import pytest
import torch

from nnapp.engine.arch import plan, weighted
from nnapp.engine.config import RunConfig
from nnapp.engine.data import load, split
from nnapp.engine.models import build_model
from nnapp.engine.train import fit
from nnapp.inside.activations import dead_rule, dead_units, layer_outputs, penultimate, probes
from nnapp.inside.projector import pca, place, project, tsne_key
from nnapp.jobs.manager import JobManager
from nnapp.jobs.runs import train_or_load
from nnapp.store.histograms import layers, on_grid
from nnapp.store.recorder import HistogramRecorder

ARCHITECTURES = [
    RunConfig(model="mlp", hidden=(64, 32)),
    RunConfig(model="mlp", hidden=(16,), batch_norm=True, dropout=0.3),
    RunConfig(model="cnn", conv=((8, 3, 2), (16, 3, 2)), hidden=(32,)),
    RunConfig(model="cnn", conv=((8, 5, 2), (16, 3, 1)), padding="valid", hidden=()),
    RunConfig(model="cnn", conv=((8, 3, 1), (16, 3, 2)), batch_norm=True, dropout=0.2, hidden=(24,)),
    RunConfig(model="cnn", conv=((4, 7, 3),), padding="valid", activation="tanh"),
]
IDS = ["mlp", "mlp-bn-dropout", "cnn-same", "cnn-valid-no-head", "cnn-bn", "cnn-tanh-pool3"]


def digit() -> np.ndarray:
    return load("mnist").test_x[0].numpy().astype(np.float32) / 255


@pytest.mark.parametrize("config", ARCHITECTURES, ids=IDS)
def test_feature_maps_have_the_models_shapes(config):
    torch.manual_seed(0)
    model = build_model(config).eval()
    _, found = layer_outputs(model, config, digit())
    shapes = [layer.shape for layer in plan(config) if layer.kind == "activation"] + [(10,)]
    assert [values.shape for _, values in found] == shapes
    assert [p.name for p, _ in found] == [p.name for p in probes(config)]
    # ...and they are what the modules themselves output, step by step
    x = torch.from_numpy(digit()).reshape(1, 1, 28, 28)
    by_position = {p.position: values for p, values in found}
    with torch.no_grad():
        for i, module in enumerate(model):
            x = module(x)
            if i in by_position:
                np.testing.assert_allclose(by_position[i], x[0].numpy(), rtol=1e-6, atol=1e-6)
    conv_maps = [values for p, values in found if p.kind == "conv"]
    assert len(conv_maps) == len(config.conv if config.model == "cnn" else ())


@pytest.mark.parametrize("config", ARCHITECTURES, ids=IDS)
def test_hooks_leave_the_output_unchanged_and_are_removed(config):
    torch.manual_seed(0)
    model = build_model(config).eval()
    x = torch.from_numpy(digit()).reshape(1, 1, 28, 28)
    with torch.no_grad():
        before = model(x)
    logits, _ = layer_outputs(model, config, digit())
    assert torch.equal(torch.from_numpy(logits), before[0])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model)
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_weighted_layers_are_named_like_their_probes():
    config = ARCHITECTURES[2]
    assert [name for _, name in weighted(config)] == ["conv 1", "conv 2", "dense 1", "output"]
    assert [p.name for p in probes(config)] == ["conv 1", "conv 2", "dense 1", "output"]
    assert [name for _, name in weighted(ARCHITECTURES[3])] == ["conv 1", "conv 2", "output"]


def test_dead_units_count_units_never_above_zero():
    config = RunConfig(model="cnn", conv=((4, 3, 2),), hidden=(8,))
    torch.manual_seed(0)
    model = build_model(config).eval()
    (conv_at, _), (dense_at, _), _ = weighted(config)
    with torch.no_grad():  # kill channel 2 and units 0 and 5: no weight in, a bias far below zero
        model[conv_at].weight[2] = 0
        model[conv_at].bias[2] = -1
        model[dense_at].weight[[0, 5]] = 0
        model[dense_at].bias[[0, 5]] = -1
    images = load("mnist").test_x[:300]
    # the reference: each block's output, module by module, never above 0 for any image (or map position)
    x, never = images.unsqueeze(1).float() / 255, {}
    with torch.no_grad():
        for i, module in enumerate(model):
            x = module(x)
            if isinstance(module, torch.nn.ReLU):
                never[i] = ~(x > 0).flatten(2).any(2).any(0) if x.dim() == 4 else ~(x > 0).any(0)
    conv_dead, dense_dead = never[conv_at + 2], never[dense_at + 1]
    assert conv_dead[2] and dense_dead[0] and dense_dead[5]
    assert dead_units(model, config, images) == [
        {"layer": "conv 1", "units": 4, "dead": int(conv_dead.sum())},
        {"layer": "dense 1", "units": 8, "dead": int(dense_dead.sum())},
    ]


def test_dead_units_do_not_apply_to_sigmoid_and_tanh():
    for activation in ("sigmoid", "tanh"):
        config = RunConfig(model="mlp", hidden=(8,), activation=activation)
        assert dead_rule(activation) is None
        assert dead_units(build_model(config), config, load("mnist").test_x[:50]) == [
            {"layer": "dense 1", "units": 8, "dead": None}
        ]
    assert "above 0" in dead_rule("relu") and "above 0" in dead_rule("gelu")


def test_every_stored_run_records_histograms_per_layer_and_epoch(store, tiny):
    config = tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=(16,))
    run = train_or_load(config, store)
    rows = store.histograms(run.key)
    assert layers(rows) == ["conv 1", "dense 1", "output"]
    weights = build_model(config)
    sizes = {name: weights[p].weight.numel() for p, name in weighted(config)}
    units = {name: weights[p].weight.shape[0] for p, name in weighted(config)}
    for name in sizes:
        w = [r for r in rows if r["layer"] == name and r["kind"] == "weight"]
        g = [r for r in rows if r["layer"] == name and r["kind"] == "grad"]
        assert [r["epoch"] for r in w] == [0, 1, 2, 3] and [r["epoch"] for r in g] == [1, 2, 3]  # no gradient before training
        assert all(sum(r["counts"]) == sizes[name] and r["lo"] < r["hi"] for r in w)
        assert all(sum(r["counts"]) == units[name] and r["lo"] >= 0 for r in g)
    # the last epoch's weights are the stored weights
    final = store.load_weights(run.key)
    last = next(r for r in rows if r["layer"] == "conv 1" and r["kind"] == "weight" and r["epoch"] == 3)
    kernel = final["1.weight"]
    assert last["lo"] == pytest.approx(kernel.min().item()) and last["norm"] == pytest.approx(kernel.norm().item(), rel=1e-5)
    store.delete(run.key)
    assert store.histograms(run.key) == []


def test_recording_histograms_leaves_training_unchanged(store, tiny):
    data = split(load("mnist"), tiny.val_fraction, tiny.seed, tiny.train_subset)
    plain = fit(tiny, data)
    key = store.claim(tiny).key  # the row a training records into (a deleted run's training records nothing)
    recorded = fit(tiny, data, callbacks=[HistogramRecorder(store, key)])
    assert recorded.test["accuracy"] == plain.test["accuracy"]
    assert [s["loss"] for s in recorded.steps] == [s["loss"] for s in plain.steps]
    assert {r["epoch"] for r in store.histograms(key)} == {0, 1, 2, 3}


def test_histograms_on_one_grid_keep_their_counts():
    rows = [
        {"epoch": 0, "lo": -1.0, "hi": 1.0, "counts": [1, 2, 3, 4]},
        {"epoch": 1, "lo": -2.0, "hi": 0.0, "counts": [5, 0, 0, 5]},
    ]
    edges, grid = on_grid(rows, bins=8)
    assert edges[0] == -2.0 and edges[-1] == 1.0 and grid.shape == (2, 8)
    np.testing.assert_allclose(grid.sum(1), [10, 10])
    np.testing.assert_allclose(grid[1][:2], [5 * 0.75, 5 * 0.25 + 0])  # the first bin of [-2, -1.5) spread evenly


def test_pca_matches_scikit_learn_and_projects_new_points():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 20)).astype(np.float32) * np.linspace(3, 0.1, 20, dtype=np.float32)
    ours = pca(features, 5)
    theirs = PCA(5).fit(features)
    np.testing.assert_allclose(np.abs(ours["basis"].T), np.abs(theirs.components_), atol=1e-4)
    np.testing.assert_allclose(ours["explained"], theirs.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(project(features[:7], ours), ours["coords"][:7], atol=1e-4)
    again = pca(features, 5)
    assert np.array_equal(again["coords"], ours["coords"])  # signs fixed: the same map every time
    wide = rng.normal(size=(300, 1500)).astype(np.float32)  # the randomised path for wide features
    assert pca(wide, 3)["coords"].shape == (300, 3)


def test_a_new_point_lands_among_its_nearest_neighbours():
    reference = np.array([[0.0, 0], [0, 1], [10, 10], [10, 11]], np.float32)
    reference_2d = np.array([[-5.0, -5], [-5, -4], [5, 5], [5, 6]], np.float32)
    placed = place(np.array([[10.0, 10.4]], np.float32), reference, reference_2d, k=2)
    np.testing.assert_allclose(placed, [[5.0, 5.5]])


def test_penultimate_features_are_what_the_output_layer_receives(store, tiny):
    run = train_or_load(tiny, store)
    model, _ = store.load_model(run.key)
    images = load("mnist").test_x[:2500]
    features, preds = penultimate(model, images)
    assert features.shape == (2500, 32)
    with torch.no_grad():
        logits = model[-1](torch.from_numpy(features))
    assert np.array_equal(logits.argmax(1).numpy(), preds)
    assert np.array_equal(preds, store.predictions(run.key)[0][:2500])


def test_tsne_runs_once_per_run_in_a_job(store, tiny):
    run = train_or_load(tiny, store)
    key, payload = tsne_key(run, 300), {"run": run.key, "points": 300}
    jobs = JobManager(store)
    try:
        first = jobs.submit_task("tsne", key, payload)
        assert first.state == "queued"
        assert jobs.wait(key, timeout=300)
        second = jobs.submit_task("tsne", key, payload)
    finally:
        jobs.shutdown()
    task = store.tasks.get(key)
    assert task.is_done(), task.message
    assert second.state == "cached" and store.tasks.get(key).finished == task.finished  # not computed again
    coords = np.array(task.result["coords"])
    assert coords.shape == (300, 2) and np.isfinite(coords).all() and coords.std() > 1
    assert task.progress["done"] == task.progress["total"]
    # the map keeps classes together: most digits' nearest neighbour on it shares their label
    labels = load("mnist").test_y[:300].numpy()
    d = ((coords[:, None] - coords[None]) ** 2).sum(2) + np.eye(300) * 1e9
    assert (labels[d.argmin(1)] == labels).mean() > 0.6


def test_every_task_kind_names_a_function():
    from nnapp.engine.states import TaskKind
    from nnapp.tasks.run import TASKS

    assert set(TaskKind) == {TaskKind.TRAIN, *TASKS}
    assert all(callable(task.fn) for task in TASKS.values())
