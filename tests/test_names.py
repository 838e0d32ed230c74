"""Runs' names, notes and tags, and numbers to three significant digits."""

import sqlite3

import pytest

from nnapp.engine.config import RunConfig
from nnapp.engine.names import default_name, differing, sig3
from nnapp.engine.presets import PRESETS
from nnapp.store.labels import MAX_NAME, Labels
from nnapp.store.store import Store


def test_numbers_show_three_significant_digits():
    assert sig3(0.000552553) == "5.53e-4"
    assert sig3(3e-3) == "3e-3" and sig3(1e-2) == "0.01" and sig3(0.0552) == "0.0552"
    assert sig3(128) == "128" and sig3(12.3456) == "12.3" and sig3(0.0) == "0" and sig3(None) == "-"
    assert sig3(2.5e6) == "2.5e6"


def test_a_default_name_says_what_sets_the_run_apart():
    fast = PRESETS["fast"]
    assert default_name(fast.replace(lr=3e-3, train_subset=5000)).startswith("cnn 16-32 · lr 3e-3 · 1 ep · 5k images")
    assert "batch norm" in default_name(fast) and "images" not in default_name(fast)
    plain = RunConfig(model="mlp", hidden=(64, 64), lr=0.000552553)
    assert default_name(plain) == "mlp 64-64 · lr 5.53e-4 · 3 ep"
    assert default_name(plain.replace(dataset="kmnist", seed=2)) == "kmnist · mlp 64-64 · lr 5.53e-4 · 3 ep · seed 2"


def test_differing_columns_come_first():
    rows = [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "c": 3}]
    assert differing(rows, ["a", "b", "c"]) == ["b", "a", "c"]


def test_names_notes_and_tags_are_stored_beside_the_run_not_in_its_key(store, tiny):
    key = store.create(tiny)
    assert store.labels(key) == Labels()
    stored = store.set_labels(key, name="  my  first  run ", notes="tried *bold*", tags="demo, Demo,  cpu\u200b ,")
    assert stored == Labels("my first run", "tried *bold*", ("demo", "cpu"))
    assert store.all_labels() == {key: stored}
    assert store.set_labels(key, name="x" * 500).name == "x" * MAX_NAME
    assert store.labels(key).tags == ("demo", "cpu")  # left as they were
    assert store.get(key).config.key() == key
    assert Labels("my run", "", ("demo",)).matches("DEMO my") and not Labels("my run").matches("other")
    store.delete(key)
    assert store.all_labels() == {}


@pytest.mark.parametrize("name", ["first\n", "tab\tname", "nul\x00", "rtl\u202erun", "zero\u200bwidth", "line\u2028break"])
def test_a_run_name_with_control_characters_is_refused_and_a_bundles_is_left_out(store, tiny, name):
    key = store.create(tiny)
    store.set_labels(key, name="kept")
    with pytest.raises(ValueError, match="control or invisible formatting"):
        store.set_labels(key, name=name)
    assert store.labels(key).name == "kept"
    from nnapp.bundle.importer import _labels

    assert _labels({"name": name, "tags": ["a\u202e"]}) == {"name": "", "notes": "", "tags": ["a\u202e"]}
    assert store.set_labels(key, tags=["a\u202e", "b"]).tags == ("a", "b")  # tags lose what cannot be shown


def test_a_store_from_before_labels_opens_and_gets_the_table(tmp_path, tiny):
    home = tmp_path / "old"
    key = Store(home).create(tiny)
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.execute("DROP TABLE run_labels")
    store = Store(home)  # migrated on open
    assert store.labels(key) == Labels() and store.set_labels(key, name="kept").name == "kept"
    assert store.get(key) is not None


def test_every_config_field_explains_itself_in_one_sentence():
    from dataclasses import fields

    from nnapp.engine.explain import FIELD_HELP

    assert set(FIELD_HELP) == {f.name for f in fields(RunConfig)}
    for name, text in FIELD_HELP.items():
        assert text.endswith(".") and text.count(". ") == 0 and len(text) < 200, name
