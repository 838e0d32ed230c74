"""What a sweep searches: the --param parser, the checks against the base config, names, and the CLI's errors."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from nnapp.__main__ import main
from nnapp.engine.presets import PRESETS
from nnapp.sweep.files import load_spec, new_name, save_spec, sweep_names
from nnapp.sweep.spec import SEARCHABLE, SweepError, SweepSpec, config_value, parse_param

ROOT = Path(__file__).resolve().parent.parent


def spec(*params: str, **kwargs) -> SweepSpec:
    return SweepSpec("s", PRESETS["fast"], tuple(parse_param(p) for p in params), **kwargs)


def test_ranges_and_lists_parse_to_what_optuna_and_the_config_take():
    lr = parse_param("lr=1e-4:1e-1:log")
    assert (lr.field, lr.low, lr.high, lr.log, lr.choices) == ("lr", 1e-4, 1e-1, True, ())
    assert parse_param("epochs=1:5").high == 5 and isinstance(parse_param("epochs=1:5").high, int)
    assert parse_param("batch_size=64,128,256").choices == (64, 128, 256)
    assert parse_param("dropout=0:0.5").log is False
    assert parse_param("batch-norm=true,false").choices == (True, False)
    hidden = parse_param("hidden=64,256-128,none")
    assert [config_value("hidden", c) for c in hidden.choices] == [[64], [256, 128], []]
    conv = parse_param("conv=16:3:2-32:3:2,32:3:1")
    assert [config_value("conv", c) for c in conv.choices] == [[[16, 3, 2], [32, 3, 2]], [[32, 3, 1]]]
    config = spec("hidden=256-128", "conv=16:3:2-32:3:2").config({"hidden": "256-128", "conv": "16:3:2-32:3:2", "lr": 0.02})
    assert (config.hidden, config.conv, config.lr) == ((256, 128), ((16, 3, 2), (32, 3, 2)), 0.02)


@pytest.mark.parametrize(
    "text, says",
    [
        ("lr", "expected FIELD=LOW:HIGH[:log] or FIELD=A,B,C"),
        ("nope=1,2", "unknown field 'nope'"),
        ("dataset=mnist,kmnist", "dataset cannot be searched"),
        ("lr=1:0.1", "the low end 1 must be below the high end 0.1"),
        ("lr=0:1:log", "a log scale needs a low end above 0"),
        ("lr=1e-3:1e-1:ln", "a range is LOW:HIGH or LOW:HIGH:log"),
        ("lr=a:b", "'a' is not a number"),
        ("epochs=1:2.5", "'2.5' is not a whole number"),
        ("batch_size=64,,128", "an empty value in the list"),
        ("batch_size=64,64", "a value is listed twice"),
        ("hidden=64,abc", "'abc' is not a layer stack"),
        ("conv=16:3,32:3:2", "'16:3' is not a conv stack"),
        ("augment=yes", "expected true and/or false"),
    ],
)
def test_a_bad_param_names_itself_and_says_why(text, says):
    with pytest.raises(SweepError) as err:
        parse_param(text)
    assert list(err.value.problems) == [f"--param {text}"]
    assert says in str(err.value)


def test_values_the_base_config_cannot_take_are_found_before_anything_runs():
    assert spec("lr=1e-4:1e-1:log", "batch_size=64,128").problems() == {}
    assert spec("lr=1e-4:100:log").problems() == {"--param lr=1e-4:100:log": "lr=100: must be a number above 0 and at most 10"}
    assert (
        "batch_size=100000: is larger than the training set"
        in spec("batch_size=64,100000").problems()["--param batch_size=64,100000"]
    )
    assert "unknown value 'rmsprop'" in str(spec("optimizer=sgd,rmsprop").problems())
    assert "searched twice" in str(spec("lr=1e-3:1e-2", "lr=1e-3,1e-2").problems())
    grid = spec("lr=1e-3:1e-2", sampler="grid").problems()
    assert grid == {"--sampler": "grid needs a list of values for every field (e.g. lr=1e-3,1e-2), not a range"}
    assert set(spec(trials=0, parallel=0, sampler="nope").problems()) == {"--param", "--trials", "--parallel", "--sampler"}
    assert "init_from" in str(SweepSpec("s", PRESETS["fast"].replace(init_from="abc"), (parse_param("lr=0.1,0.2"),)).problems())
    assert spec("lr=1e-3,1e-2", "batch_size=64,128,256", sampler="grid").grid_size() == 6


def test_a_spec_round_trips_through_its_folder(tmp_path):
    original = spec("lr=1e-4:1e-1:log", "hidden=64,256-128", "batch_norm=true,false", trials=7, parallel=2, pruner="asha")
    name = new_name(tmp_path, "fast", original.params)
    assert name.startswith("fast-lr-hidden-batch_norm-") and new_name(tmp_path, "fast", original.params) == name + "-2"
    stored = dataclasses.replace(original, name=name)
    save_spec(tmp_path, stored)
    assert load_spec(tmp_path, name) == stored and sweep_names(tmp_path) == [name]
    with pytest.raises(SweepError, match="no sweep named 'nope'"):
        load_spec(tmp_path, "nope")


def test_every_searchable_field_has_a_type_the_parser_knows():
    for field in SEARCHABLE:
        with pytest.raises(SweepError):  # an empty spec is refused for every field alike
            parse_param(f"{field}=")


def test_bad_sweep_arguments_are_one_line_errors_naming_the_part(home, capsys):
    cases = {
        ("--param", "lr=0:1:log"): "--param lr=0:1:log: a log scale",
        ("--param", "nope=1"): "unknown field 'nope'",
        ("--param", "lr=1e-3:1e-2", "--sampler", "grid"): "--sampler: grid needs a list",
        ("--param", "lr=1e-3:1e-2", "--trials", "0"): "--trials: must be between 1 and 1000",
        ("--param", "lr=1e-3:1e-2", "--parallel", "0"): "--parallel: must be between 1 and 64",
        ("--param", "lr=1e-3:1e-2", "--name", "a/b"): "--name: use letters",
        ("--param", "lr=1e-3:1e-2", "--set", "epochs=0"): "epochs",
        ("--resume", "nope"): "--resume: no sweep named 'nope'",
        ("--resume", "nope", "--param", "lr=1e-3:1e-2"): "--param cannot change it",
        ("--sampler", "nope"): "invalid choice: 'nope'",
        ("--trials", "x"): "invalid int value: 'x'",
        (): "--param: name at least one field",
    }
    for args, says in cases.items():
        assert main(["sweep", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("nnapp: error:") and len(err.strip().splitlines()) == 1, (args, err)
        assert says in err, (args, err)
    assert not (home / "sweeps").exists() or not any((home / "sweeps").iterdir())  # nothing was started


def test_the_sweep_help_needs_no_optuna_torch_or_ray():
    code = (
        "import sys, contextlib, io\n"
        "from nnapp.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try: main(['sweep', '--help'])\n"
        "    except SystemExit: pass\n"
        "assert '--param FIELD=SPEC' in out.getvalue()\n"
        "assert not {'torch', 'optuna', 'ray'} & set(sys.modules), sorted({'torch', 'optuna', 'ray'} & set(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
