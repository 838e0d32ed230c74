"""Property-based fuzzing of every config field: a clear error naming the field, or a config that round-trips.

The ranges below are written out again from the README's table of config fields, apart from the code,
so that the code is checked against what is documented rather than against itself.
"""

import json
import math
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnapp.__main__ import main
from nnapp.engine.checks import check
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.limits import estimate
from nnapp.engine.registry import ACTIVATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULES

NAMES = [f.name for f in fields(RunConfig)]
SEED_MAX = 2**63 - 1
TRAIN_IMAGES = 54_000  # MNIST's 60,000 less the default 10% validation share
# A subset smaller than the default batch of 128 (after the validation share) may be blamed on the batch.
BLAME = {"train_subset": {"train_subset", "batch_size"}}


def number(v):
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and math.isfinite(v)


def whole(v):
    return number(v) and (isinstance(v, int) or v.is_integer())


def between(lo, hi, open_lo=False, open_hi=False):
    def ok(v):
        return number(v) and (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)

    return ok


def whole_between(lo, hi):
    return lambda v: whole(v) and lo <= v <= hi


def one_of(options):
    return lambda v: isinstance(v, str) and v in options


def hex_key(length):
    return lambda v: isinstance(v, str) and (v == "" or (len(v) == length and all(c in "0123456789abcdef" for c in v)))


def hidden_ok(v):
    return (
        isinstance(v, list) and len(v) <= 16 and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 8192 for w in v)
    )


def short_form(text, kind):
    """A layers field written as text, the way --set reads it (the README's `hidden=256,128`, `conv=32:3:2,64:3:2`)."""
    text = text.strip()
    if text in ("", "none"):
        return []
    if kind == "hidden" and all(part.strip().isdigit() for part in text.split(",")):
        return [int(part) for part in text.split(",")] if all(len(p.strip()) <= 30 for p in text.split(",")) else None
    if kind == "conv" and ":" in text and not text.startswith("["):
        try:
            return [[int(x) for x in block.split(":")] for block in text.split(",")]
        except ValueError:
            return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def layers_ok(check, kind):
    """A list of layers, or the same written as text or (hidden) as one width: one config, whatever the spelling."""

    def ok(v):
        if isinstance(v, int) and not isinstance(v, bool) and kind == "hidden":
            v = [v]
        elif isinstance(v, str):
            v = short_form(v, kind)
        return check(v)

    return ok


def conv_ok(v):
    if not isinstance(v, list) or not 1 <= len(v) <= 8:
        return False
    size = 28  # the default padding, "same", keeps the map size; pooling divides it
    for block in v:
        if not (
            isinstance(block, list) and len(block) == 3 and all(isinstance(x, int) and not isinstance(x, bool) for x in block)
        ):
            return False
        channels, kernel, pool = block
        if not (1 <= channels <= 1024 and kernel >= 1 and kernel % 2 == 1 and kernel <= size and 1 <= pool <= size):
            return False
        size //= pool
    return True


DOCUMENTED = {
    "dataset": one_of(DATASETS),
    "val_fraction": between(0, 0.5, open_lo=True, open_hi=True),
    "train_subset": lambda v: whole_between(0, 60_000)(v) and (v == 0 or v - max(1, round(v * 0.1)) >= 128),
    "model": one_of(("mlp", "cnn")),
    "conv": layers_ok(conv_ok, "conv"),
    "padding": one_of(("same", "valid")),
    "hidden": layers_ok(hidden_ok, "hidden"),
    "activation": one_of(ACTIVATIONS),
    "dropout": between(0, 1, open_hi=True),
    "batch_norm": lambda v: isinstance(v, bool),
    "optimizer": one_of(OPTIMIZERS),
    "lr": between(0, 10, open_lo=True),
    "momentum": between(0, 1, open_hi=True),
    "weight_decay": between(0, 1),
    "schedule": one_of(SCHEDULES),
    "batch_size": whole_between(1, TRAIN_IMAGES),
    "epochs": whole_between(1, 1000),
    "loss": one_of(LOSSES),
    "label_smoothing": between(0, 1, open_hi=True),
    "patience": whole_between(0, 1000),
    "augment": lambda v: isinstance(v, bool),
    "precision": one_of(("auto", "fp32", "bf16")),
    "seed": whole_between(0, SEED_MAX),
    "init_from": hex_key(16),
    "personal": hex_key(12),
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**4000])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, 0.5, 1.0, 1e-400, 1e308, -0.0, 0.49999999999999994])
    | st.text(max_size=30)
    | st.sampled_from(["", "mnist", "cnn", "relu", "adam", "0123456789abcdef", "0123456789ab", "ABCDEF0123456789", "x" * 500])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=25
)
LAYERS = st.lists(st.integers(min_value=-2, max_value=9000), max_size=18) | st.lists(
    st.lists(st.integers(min_value=-1, max_value=1030), min_size=2, max_size=4), max_size=10
)


# The documented ends of each numeric field: values at, just inside and just outside them are drawn often.
ENDS = {
    "val_fraction": (0, 0.5),
    "train_subset": (0, 60_000),
    "dropout": (0, 1),
    "lr": (0, 10),
    "momentum": (0, 1),
    "weight_decay": (0, 1),
    "batch_size": (1, TRAIN_IMAGES),
    "epochs": (1, 1000),
    "label_smoothing": (0, 1),
    "patience": (0, 1000),
    "seed": (0, SEED_MAX),
}


def around(lo, hi):
    span = hi - lo
    edges = [lo, hi, *(math.nextafter(e, d) for e in (lo, hi) for d in (-math.inf, math.inf)), lo - 1, hi + 1]
    return (
        st.sampled_from(edges)
        | st.floats(float(lo - span), float(hi + span))
        | st.integers(int(lo - span), int(hi + span))
        | st.integers(int(hi) - 3, int(hi) + 3)
    )


def json_value(name):
    """Arbitrary JSON, plus values near the field's own edges."""
    near = {
        "hidden": LAYERS,
        "conv": LAYERS,
        "dataset": st.sampled_from([*DATASETS, "cifar", "MNIST"]),
        "activation": st.sampled_from([*ACTIVATIONS, "swish"]),
        **{field: around(*ends) for field, ends in ENDS.items()},
    }
    return JSON | near.get(name, SCALARS)


def problems_of(data: dict) -> dict[str, str]:
    """What is wrong with these fields over the defaults, as from_dict and validate() say it."""
    try:
        config = RunConfig.from_dict(data)
    except ConfigError as err:
        return err.problems
    problems = config.validate()
    if not problems:  # a readable config round-trips through JSON with the same key
        again = RunConfig.from_dict(json.loads(config.to_json()))
        assert again == config and again.key() == config.key()
    return problems


def assert_clear(problems: dict[str, str]) -> None:
    for name, message in problems.items():
        assert name in NAMES, name
        assert isinstance(message, str) and message and "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_field_is_accepted_in_range_and_named_out_of_it(name, data):
    value = data.draw(json_value(name))
    problems = problems_of({name: value})
    assert_clear(problems)
    if DOCUMENTED[name](value):
        assert problems == {}, (name, value, problems)
    else:
        assert set(problems) & BLAME.get(name, {name}), (name, value)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=40)
    | st.sampled_from(["nan", "NaN", "-Infinity", "1e999", "9" * 5000, "[" * 3000, "[[1,2,3]]", "1,2", "1:2:3"])
)
def test_every_set_value_gives_a_config_or_an_error_naming_the_field(name, text):
    try:
        config = RunConfig().with_overrides([f"{name}={text}"])
    except ConfigError as err:
        assert name in err.problems, (text, err.problems)
        assert_clear(err.problems)
        return
    assert_clear(config.validate())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(NAMES), JSON, max_size=8))
def test_any_mix_of_fields_validates_without_raising(data):
    problems = problems_of(data)
    assert_clear(problems)
    if problems:
        return
    config = RunConfig.from_dict(data)
    assert estimate(config).total > 0  # the size of every readable config can be worked out
    assert_clear(check(config).problems)


@pytest.mark.parametrize(
    "args, field",
    [
        (["--set", "val_fraction=nan"], "val_fraction"),
        (["--set", "weight_decay=NaN"], "weight_decay"),
        (["--set", "lr=Infinity"], "lr"),
        (["--set", "dropout=-Infinity"], "dropout"),
        (["--set", f"seed={2**64}"], "seed"),
        (["--set", "seed=" + "7" * 5000], "seed"),
        (["--set", "lr=" + "7" * 5000 + ".5"], "lr"),
        (["--set", "hidden=" + "[" * 5000 + "]" * 5000], "hidden"),
        (["--set", "conv=" + "[" * 200 + "]" * 200], "conv"),
        (["--set", "train_subset=60001"], "train_subset"),
        (["--set", "train_subset=100", "--set", "batch_size=500"], "batch_size"),
        (["--set", "init_from=../../etc/passwd"], "init_from"),
    ],
)
def test_hostile_values_on_the_command_line_exit_2_naming_the_field(home, capsys, args, field):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnapp: error: invalid config: {field}:") and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "content, says",
    [
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b'{"lr": 0.1, "seed": ' + b"9" * 5000 + b"}", "thousands of digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"val_fraction": NaN}', "val_fraction"),
        (b" " * (2 << 20), "larger than"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_hostile_config_files_exit_2_with_one_line(home, tmp_path, capsys, content, says):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnapp: error:") and says in err and len(err.strip().splitlines()) == 1, err
