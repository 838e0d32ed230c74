"""Model size and training memory: worked out without building the model, refused with the sizes named."""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import nnapp.engine.limits as limits
from nnapp.__main__ import main
from nnapp.engine.arch import parameter_count
from nnapp.engine.checks import check
from nnapp.engine.config import RunConfig
from nnapp.engine.limits import MAX_PARAMETERS, estimate, memory_limit, parse_size
from nnapp.engine.models import build_model
from nnapp.engine.presets import PRESETS
from ui import PAGES

APP = str(Path(__file__).resolve().parent.parent / "app.py")
HUGE = RunConfig(model="cnn", conv=((1024, 3, 1),), hidden=(8192,))  # the 6.6G-parameter network
WIDE = RunConfig(model="cnn", conv=((64, 3, 1), (64, 3, 1)), hidden=(16,), batch_size=4096)  # small, but big activations


@pytest.fixture
def limit(monkeypatch):
    """A fixed memory limit, so the tests do not depend on what this machine has free."""

    def set_limit(text: str) -> None:
        monkeypatch.setenv("NNAPP_MEMORY_LIMIT", text)

    set_limit("4GiB")
    return set_limit


def test_too_many_parameters_is_refused_naming_the_count(limit):
    problems = check(HUGE).problems
    assert set(problems) == {"model"}
    count = parameter_count(HUGE)
    assert count > 6e9 and f"{count:,} parameters" in problems["model"] and f"{MAX_PARAMETERS:,}" in problems["model"]


def test_memory_beyond_the_limit_is_refused_naming_the_sizes(limit):
    need = estimate(WIDE)
    assert need.parameters < MAX_PARAMETERS and need.activations > need.fixed
    problems = check(WIDE).problems
    assert set(problems) == {"batch_size"}  # a smaller batch would fit
    message = problems["batch_size"]
    assert f"about {limits.size_text(need.total)}" in message and "activations at batch 4,096" in message
    assert "4.0 GiB allowed (set by NNAPP_MEMORY_LIMIT)" in message
    assert check(WIDE.replace(batch_size=64)).problems == {}
    limit("1GiB")  # the runtime alone is 1 GiB: no batch size helps, the network must shrink
    assert set(check(RunConfig()).problems) == {"model"}


def test_the_estimate_counts_weights_gradients_and_the_optimiser_state():
    for name in ("adam", "adamw", "sgd"):
        need = estimate(PRESETS["default"].replace(optimizer=name))
        params = sum(p.numel() for p in build_model(PRESETS["default"]).parameters())
        assert need.parameters == params and need.weights == need.gradients == 4 * params
        assert need.optimizer == (4 if name == "sgd" else 8) * params


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_activation_estimate_covers_what_autograd_saves(name):
    """The tensors a real forward pass keeps for backward, measured, fit inside the estimate."""
    config = PRESETS[name].replace(batch_size=16)
    model = build_model(config).train()
    params = {p.data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        if t.data_ptr() not in params:
            saved[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.rand(16, 1, 28, 28)).sum().backward()
    assert sum(saved.values()) <= estimate(config).activations


def test_the_limit_comes_from_the_machine(monkeypatch):
    monkeypatch.delenv("NNAPP_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(limits, "_cuda_memory", lambda: None)
    monkeypatch.setattr(limits, "available_memory", lambda: 10 << 30)
    limit = memory_limit()
    assert limit.bytes == 8 << 30 and limit.source == "80% of the 10.0 GiB of memory available now"
    monkeypatch.setattr(limits, "_cuda_memory", lambda: (100 << 30, "NVIDIA H200"))
    assert memory_limit().bytes == 90 << 30 and "NVIDIA H200" in memory_limit().source
    assert limits.available_memory() is not None or not Path("/proc/meminfo").exists()


def test_sizes_and_a_bad_limit_setting(monkeypatch):
    assert parse_size("8GiB") == 8 << 30 and parse_size("512 MiB") == 512 << 20 and parse_size("1000") == 1000
    monkeypatch.setenv("NNAPP_MEMORY_LIMIT", "lots")
    assert "NNAPP_MEMORY_LIMIT='lots' is not a size" in check(RunConfig()).problems["model"]


def test_the_cli_refuses_a_huge_network_before_training(home, limit, capsys):
    assert main(["train", "--set", "model=cnn", "--set", "conv=1024:3:1", "--set", "hidden=8192"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnapp: error: invalid config: model: the network has 6,576,778,250 parameters")
    from nnapp.store.store import Store

    assert Store(home).runs() == []


def test_the_train_page_shows_sizes_without_building_the_model(home, limit, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the Train page built a model")

    monkeypatch.setattr("nnapp.engine.models.build_model", refuse)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["train"].path).run()
    assert "parameters** · about" in at.markdown[-1].value or any("parameters** · about" in m.value for m in at.markdown)
    at.session_state["base_conv"] = HUGE.conv
    at.session_state["base_hidden"] = HUGE.hidden
    at.session_state["layers_version"] += 1
    at.run()
    assert not at.exception, at.exception
    shown = PRESETS["default"].replace(conv=HUGE.conv, hidden=HUGE.hidden)  # the page starts from the default preset
    assert any(f"{parameter_count(shown):,} parameters" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="launch").disabled
