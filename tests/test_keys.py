"""One config, one key: equal configs have the same key however they were written (on the command line, in a
JSON file, in code), and names refuse control characters and trailing newlines."""

import json
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnapp.__main__ import main
from nnapp.cli.common import read_config_file
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.fields import RANGES, name_problem
from nnapp.sweep.spec import NAME, SweepError, SweepSpec, parse_param

FLOATS = [name for name, rng in RANGES.items() if not rng.whole]
WHOLES = [name for name, rng in RANGES.items() if rng.whole]


def spellings(value: float) -> list[str]:
    """Ways a person or a script writes the number `value` on the command line."""
    exact = Decimal(value)  # every digit of the binary number
    texts = {repr(value), f"{value:.17g}", f"{value:.17e}", str(exact), format(exact, "f"), json.dumps(value)}
    if value == 0:
        texts |= {"0", "-0", "-0.0", "0e0", "-0e-5", "0.000"}
    if float(value).is_integer() and abs(value) < 1e15:
        texts |= {str(int(value)), f"{int(value)}.0", f"{int(value)}e0"}
    return sorted(texts)


def key_or_refused(config: RunConfig, assignment: str) -> str | None:
    try:
        return config.with_overrides([assignment]).key()
    except ConfigError:
        return None


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(FLOATS), value=st.floats(min_value=0, max_value=10) | st.sampled_from([0.0, -0.0, 1e-3, 0.1, 0.5]))
def test_every_spelling_of_a_number_gives_the_same_key(name, value):
    base = RunConfig()
    keys = {text: key_or_refused(base, f"{name}={text}") for text in spellings(value)}
    accepted = {k for k in keys.values() if k is not None}
    assert len(accepted) <= 1, keys  # a spelling is refused or gives the one key
    if accepted:  # and it is the key of the config built in code, from an int or a float
        assert accepted == {base.replace(**{name: value}).key()}
        if float(value).is_integer():
            assert base.replace(**{name: int(value)}).key() in accepted


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(WHOLES), value=st.integers(min_value=0, max_value=10**6))
def test_every_spelling_of_a_whole_number_gives_the_same_key(name, value):
    base = RunConfig(train_subset=0 if name != "train_subset" else value)
    keys = {
        text: key_or_refused(base, f"{name}={text}") for text in (str(value), f"{value}.0", f"{value}e0", f"{Decimal(value):E}")
    }
    assert len({k for k in keys.values() if k is not None}) <= 1, keys


@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(min_value=1, max_value=512), min_size=1, max_size=4))
def test_layers_as_a_list_or_as_text_give_the_same_key(widths):
    base = RunConfig(model="mlp")
    joined = ",".join(map(str, widths))
    texts = [joined, json.dumps(widths), f" {', '.join(map(str, widths))} ", json.dumps(joined)]
    keys = {key_or_refused(base, f"hidden={text}") for text in texts}
    keys |= {RunConfig.from_dict({**base.to_dict(), "hidden": form}).key() for form in (widths, joined, tuple(widths))}
    keys.add(base.replace(hidden=widths).key())
    if len(widths) == 1:
        keys.add(RunConfig.from_dict({**base.to_dict(), "hidden": widths[0]}).key())
    assert len(keys) == 1, keys


def test_minus_zero_and_ints_are_the_configs_own_values(tmp_path):
    """-0.0 and 0, 1 and 1.0 are one config in code, in a JSON file and on the command line: one stored run."""
    spelled = RunConfig(dropout=-0.0, weight_decay=0, lr=1, hidden=[128])
    plain = RunConfig(dropout=0.0, weight_decay=0.0, lr=1.0, hidden=(128,))
    assert spelled == plain and spelled.key() == plain.key() and hash(spelled) == hash(plain)
    assert math.copysign(1, spelled.dropout) == 1 and isinstance(spelled.lr, float)
    path = tmp_path / "config.json"
    path.write_text('{"dropout": -0.0, "weight_decay": -0, "lr": 1e0, "hidden": "128", "conv": "32:3:2,64:3:2"}')
    assert RunConfig.from_dict(json.loads(path.read_text())).key() == plain.key()
    from_cli = read_config_file(path).with_overrides(["lr=0.001", "dropout=-0"])  # as train --config --set reads them
    assert from_cli.key() == plain.replace(lr=0.001).key()


@pytest.mark.parametrize(
    "name",
    [
        "sweep\n",
        "line\nbreak",
        "tab\there",
        "nul\x00",
        "bell\x07",
        "rtl\u202eoverride",
        "zero\u200bwidth",
        " padded",
        "padded ",
        "",
        "x" * 81,
    ],
)
def test_names_refuse_control_characters_and_trailing_newlines(name):
    assert name_problem(name) is not None
    assert not NAME.match(name)  # a sweep's name
    spec = SweepSpec(name, RunConfig(), (parse_param("lr=1e-3,1e-2"),), sampler="grid")
    assert "--name" in spec.problems()


@pytest.mark.parametrize("name", ["ada\n", "ada\r\n", "tab\tname", "nul\x00", "rtl\u202eada", "zero\u200bwidth"])
def test_peoples_names_refuse_control_characters_and_trailing_newlines(name):
    from nnapp.engine.people import BadName, clean_name

    with pytest.raises(BadName, match="control"):
        clean_name(name)
    assert clean_name("  Ada   Lovelace ") == "Ada Lovelace"  # spaces are tidied, not refused


def test_names_of_plain_text_are_accepted():
    for name in ("Ada Lovelace", "mnist-lr-sweep_2", "Zoë's run (v2)", "数字"):
        assert name_problem(name) is None, name
    assert NAME.match("mnist-lr-sweep_2.1")


def test_a_sweep_named_with_a_newline_is_refused_on_the_command_line(home, capsys):
    code = main(["sweep", "--preset", "fast", "--param", "lr=1e-3,1e-2", "--name", "mine\n"])
    err = capsys.readouterr().err
    assert code == 2 and "--name" in err and len(err.strip().splitlines()) == 1
    assert not (home / "sweeps").exists() or not list((home / "sweeps").iterdir())
    with pytest.raises(SweepError):
        from nnapp.sweep.files import load_spec

        load_spec(home, "mine\n")
