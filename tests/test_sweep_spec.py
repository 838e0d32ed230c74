"""What a sweep searches: the --param parser, the checks against the base config, names, and the CLI's errors."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnapp.__main__ import main
from nnapp.engine.presets import PRESETS
from nnapp.sweep.files import load_spec, new_name, save_spec, sweep_names
from nnapp.sweep.spec import DEFAULT_RANGES, MAX_PARALLEL, SEARCHABLE, SweepError, SweepSpec, config_value, parse_param
from tests.conftest import TINY_SET

ROOT = Path(__file__).resolve().parent.parent
HUNDRED = ",".join(str(n) for n in range(1, 101))


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
    from nnapp.engine.device import cpu_count

    cases = {
        ("--param", "lr=0:1:log"): "--param lr=0:1:log: a log scale",
        ("--param", "nope=1"): "unknown field 'nope'",
        ("--param", "lr=1e-3:1e-2", "--sampler", "grid"): "--sampler: grid needs a list",
        ("--param", "lr=1e-3:1e-2", "--trials", "0"): "--trials: must be between 1 and 1000",
        ("--param", "lr=1e-3:1e-2", "--parallel", "0"): "--parallel: must be between 1 and 64",
        ("--param", "lr=1e-3:1e-2", "--name", "a/b"): "--name: use letters",
        ("--param", "lr=1e-3:1e-2", "--set", "epochs=0"): "epochs",
        ("--param", "lr=1e-3:1e-2", "--parallel", str(cpu_count() + 1)): f"--parallel: at most {cpu_count()} trial",
        ("--param", "lr=1e-3:1e-2", "--seed", "-1"): "--seed: must be a whole number from 0 to 4,294,967,295",
        ("--param", "lr=1e-3:1e-2", "--seed", str(2**32)): "--seed: must be a whole number from 0 to 4,294,967,295",
        ("--preset", "seed-mlp", "--param", "conv=16:3:2,32:3:2"): "conv=16:3:2,32:3:2: conv changes nothing that trains",
        ("--param", "momentum=0.8:0.99"): "momentum changes nothing that trains here: the adamw optimizer takes no momentum",
        (
            "--param",
            f"batch_size={HUNDRED}",
            "--param",
            f"epochs={HUNDRED}",
            "--param",
            f"patience={HUNDRED}",
            "--sampler",
            "grid",
        ): ("--sampler: the grid holds 1,000,000 configs, more than the 100,000"),
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


# --- sweeps that validate but cannot train, or would claim more than this machine has -------------------------

SGD_MLP = PRESETS["seed-mlp"].replace(optimizer="sgd", lr=0.05)
BASES = {  # around each, a field that changes nothing is refused; one that changes something is not
    "mlp adam": PRESETS["seed-mlp"],
    "cnn adamw one-cycle smoothing": PRESETS["fast"],
    "mlp sgd one-cycle": SGD_MLP.replace(schedule="onecycle"),
    "mlp sgd constant": SGD_MLP,
    "cnn mse": PRESETS["seed-cnn"].replace(loss="mse"),
}
FIELDS = {**DEFAULT_RANGES, "padding": "same,valid", "batch_norm": "true,false"}
INERT = "changes nothing that trains here"


def trained_weights(config):
    """The weights after a few steps of training `config` on 200 digits, seeded by the config as every run is."""
    import torch

    from nnapp.engine.data import load, split
    from nnapp.engine.train import setup, train_epoch

    config = config.replace(train_subset=200, val_fraction=0.1, batch_size=64, epochs=1, precision="fp32")
    data = split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    loop = setup(config, data, torch.device("cpu"), None, None)
    train_epoch(loop, 1, None)
    return loop.model.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and bool((a[k] == b[k]).all()) for k in a)


@pytest.mark.parametrize("base", list(BASES))
def test_a_searched_field_is_refused_exactly_when_its_values_train_the_same_network(base):
    """Trained for real: where the sweep refuses a field as changing nothing, every value trains weights equal
    to the bit; where it takes the field, some value trains other weights."""
    for field in ("conv", "padding", "momentum", "label_smoothing", "dropout", "batch_norm", "hidden", "lr"):
        sweep = SweepSpec("s", BASES[base], (parse_param(f"{field}={FIELDS[field]}"),))
        problem = sweep.problems().get(f"--param {field}={FIELDS[field]}", "")
        if problem and INERT not in problem:
            continue  # a value the base cannot take at all (label smoothing with MSE): refused, said why
        configs = [sweep.config({field: v}) for v in sweep.params[0].values()]
        weights = [trained_weights(c) for c in configs if not c.validate()]
        alike = all(same(weights[0], w) for w in weights[1:])
        assert alike == (INERT in problem), (base, field, problem)


def test_fields_that_change_nothing_are_named_with_the_reason_and_other_searched_fields_count():
    mlp, fast, sgd = PRESETS["seed-mlp"], PRESETS["fast"], SGD_MLP.replace(schedule="onecycle")

    def problem(base, *params):
        return SweepSpec("s", base, tuple(parse_param(p) for p in params)).problems().get(f"--param {params[0]}")

    assert "every value builds the same network for this MLP" in problem(mlp, "conv=16:3:2,32:3:2")
    assert "every value builds the same network for this MLP" in problem(mlp, "padding=same,valid")
    assert problem(fast, "momentum=0.8:0.99").endswith("the adamw optimizer takes no momentum")
    assert problem(sgd, "momentum=0.8:0.99").endswith("the onecycle schedule sets the momentum itself at every step")
    assert problem(mlp, "conv=16:3:2,32:3:2", "model=mlp,cnn") is None  # the CNN trials use it
    assert problem(mlp, "momentum=0.8:0.99", "optimizer=adam,sgd") is None  # the SGD trials use it
    assert "onecycle schedule sets" in problem(fast, "momentum=0.8:0.99", "optimizer=adamw,sgd")  # ...not with one-cycle
    assert problem(mlp, "lr=1e-3") is None  # one value: nothing to compare


@settings(max_examples=40, deadline=None)
@given(seed=st.one_of(st.integers(-(2**70), 2**70), st.integers(-3, 3), st.integers(2**32 - 3, 2**32 + 3)))
def test_a_seed_is_taken_exactly_when_every_sampler_takes_it(seed):
    from nnapp.sweep.view import view

    problems = spec("batch_size=64,128", seed=seed).problems()
    assert ("--seed" in problems) == (not 0 <= seed < 2**32), problems
    if "--seed" not in problems:
        for sampler in ("grid", "random", "tpe"):
            decider = view(spec("batch_size=64,128", seed=seed, sampler=sampler), [], 0, busy=False)
            assert decider.ask().suggest_categorical("batch_size", [64, 128]) in (64, 128)


def test_a_grid_is_sized_before_it_is_built_and_refused_above_the_limit():
    import tracemalloc

    values = ",".join(str(n) for n in range(1, 1001))
    huge = spec(f"batch_size={values}", f"epochs={values}", f"patience={values.replace('1000', '0')}", sampler="grid")
    tracemalloc.start()
    problems = huge.problems()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert problems["--sampler"].startswith("the grid holds 1,000,000,000 configs, more than the 100,000")
    assert peak < 64 << 20  # a billion points were never made
    assert spec("lr=1e-3,1e-2", "batch_size=64,128,256", sampler="grid").problems() == {}
    with pytest.raises(SweepError, match="at most 1,000"):
        parse_param("seed=" + ",".join(str(n) for n in range(1001)))


@settings(max_examples=30, deadline=None)
@given(
    parallel=st.integers(1, MAX_PARALLEL),
    limit=st.sampled_from(["", "1500MiB", "3GiB", "5GiB", "1TiB"]),
    batches=st.sampled_from(["64,128", "512,2048", "32"]),
)
def test_trials_at_once_are_bounded_by_the_cpus_and_the_memory_each_needs(parallel, limit, batches):
    from nnapp.engine.device import cpu_count
    from nnapp.engine.limits import estimate, memory_limit

    sweep = spec("lr=1e-3:1e-1:log", f"batch_size={batches}", parallel=parallel)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NNAPP_MEMORY_LIMIT", limit)
        problems, allowed = sweep.problems(), memory_limit().bytes
    if set(problems) - {"--parallel"}:
        return  # a batch that does not fit even alone: refused for that
    need = max(estimate(sweep.config({"batch_size": b})).total for b in sweep.params[1].values())
    fits = min(cpu_count(), allowed // need)
    assert ("--parallel" in problems) == (parallel > fits), (problems, fits)
    if "--parallel" in problems:
        assert problems["--parallel"].startswith(f"at most {fits} trial")
    assert not dataclasses.replace(sweep, ray="10.0.0.1:6379").problems()  # a cluster's own resources decide there


def test_a_sweep_never_starts_more_job_processes_than_trials(home):
    """The CLI asked for two trials at once with one trial to run: one job process, no spare left over."""
    import time

    import psutil

    command = [sys.executable, "-m", "nnapp", "sweep", *TINY_SET, "--param", "lr=1e-3,2e-3", "--sampler", "grid"]
    proc = subprocess.Popen([*command, "--trials", "1", "--parallel", "2", "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL)
    seen = set()
    while proc.poll() is None:
        try:
            seen |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert proc.returncode == 0 and len(seen) == 1, seen
