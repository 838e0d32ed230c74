"""AppTest: the Data page, and the Train, Results, Playground and Compare pages on a data set of your own."""

import json
import shutil

import pytest
import streamlit

from nnapp.bundle.export import bundle_bytes
from nnapp.bundle.importer import import_bundle
from nnapp.engine import datasets
from nnapp.engine.data import load
from nnapp.engine.presets import SMALL_DATA, SMALL_DATA_WHY, small_data
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from tests.owndata import NAMES, drawn_set
from tests.test_pages import app, image_captions, wait_done
from ui import PAGES


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding a drawn data set of three shapes (12 drawings each) and a run on it, made once."""
    home = tmp_path_factory.mktemp("own")
    store = Store(home)
    made = drawn_set(store, per_class=12)
    return home, train_or_load(small_data(made.ref).replace(epochs=8, patience=0), store).key


@pytest.fixture
def own_run(home, trained):
    """A copy of that store as this test's: (store, run)."""
    shutil.copytree(trained[0], home)
    store = Store(home)
    return store, store.get(trained[1])


def test_the_data_page_makes_a_data_set_and_says_what_it_needs(home):
    at = app("data")
    assert at.selectbox(key="data_pick").value == "＋ New data set"
    at.text_input(key="new_dataset_name").set_value("Bad Name").run()
    at.text_area(key="new_classes").set_value("circle\nsquare").run()
    at.button(key="create_dataset").click().run()
    assert "lower-case letters" in at.error[0].value and not Store().data_sets()
    at.text_input(key="new_dataset_name").set_value("shapes").run()
    at.text_area(key="new_classes").set_value("circle\nCircle").run()
    at.button(key="create_dataset").click().run()
    assert "given twice" in at.error[0].value and not Store().data_sets()
    at.text_area(key="new_classes").set_value("circle\nsquare\n**arrow** <i>").run()
    at.button(key="create_dataset").click().run()
    assert not at.exception and at.selectbox(key="data_pick").value == "shapes"
    assert Store().data_set("shapes").classes == ("circle", "square", "**arrow** <i>")
    assert at.info[0].value.startswith("Not ready to train yet. Each class needs at least 10 examples")
    (counter,) = at.metric
    assert counter.value == "0" and "10 more to train" in counter.proto.delta
    assert at.radio(key="draw_class").options == ["circle", "square", "\\*\\*arrow\\*\\* \\<i\\>"]  # shown as text


def test_a_ready_data_set_opens_the_train_page_with_small_data_defaults(store):
    drawn_set(store, per_class=10)
    at = app("data")
    assert at.success[0].value.startswith("Ready to train")
    at.button(key="train_on_it").click().run()
    at.switch_page(PAGES["train"].path)  # where the click went: later runs stay there
    assert not at.exception and at.selectbox(key="cfg_dataset").value == "shapes"
    assert at.selectbox(key="preset").value == SMALL_DATA and SMALL_DATA_WHY in [c.value for c in at.caption]
    assert at.checkbox(key="cfg_augment").value and at.number_input(key="cfg_patience").value == 8
    ref = store.data_set("shapes").ref
    assert f"`{small_data(ref).key()}`" in " ".join(m.value for m in at.markdown)  # the key names the version
    assert not at.button(key="launch").disabled  # launched in Chromium: test_browser_data.py


def test_the_train_page_offers_data_sets_of_yours_and_switching_brings_small_data(store):
    drawn_set(store, per_class=10)
    at = app("train")
    assert at.selectbox(key="cfg_dataset").options[-1] == "shapes (yours: 3 classes, 30 examples)"
    assert at.selectbox(key="preset").value == "default"
    at.selectbox(key="cfg_dataset").select("shapes").run()
    assert at.selectbox(key="preset").value == SMALL_DATA and not at.error
    at.selectbox(key="cfg_dataset").select("mnist").run()  # back: the form keeps what it has
    assert at.selectbox(key="preset").value == SMALL_DATA and at.selectbox(key="cfg_dataset").value == "mnist"


def test_results_name_the_classes_and_continue_a_run(own_run):
    store, run = own_run
    at = app("results")
    table = at.dataframe[0].value
    assert list(table["class"]) == NAMES and table["support"].sum() == run.config.data_spec().test_size
    assert all(c.split(": ")[1].split(" → ")[0] in NAMES for c in image_captions(at))
    assert not [s for s in at.subheader if s.value == "Not a digit"]
    at.button(key="to_continue").click().run()
    at.switch_page(PAGES["train"].path)
    assert not at.exception and at.selectbox(key="continue_pick").value == run.key
    at.number_input(key="continue_epochs").set_value(2).run()
    at.button(key="continue_go").click().run()
    child = wait_done(at.session_state["watch_run"])
    assert child.status == "done" and child.parent == run.key and child.config.epochs == 2
    at = app()
    at.query_params["run"] = child.key
    at.switch_page(PAGES["results"].path).run()
    assert f"Continued from run `{run.key[:8]}`" in " ".join(c.value for c in at.caption)
    assert not at.exception


def test_the_playground_answers_with_its_classes_and_no_talk_of_digits(own_run):
    store, run = own_run
    at = app()
    at.query_params["run"] = run.key
    at.switch_page(PAGES["playground"].path).run()
    assert not at.exception and at.selectbox(key="playground_pick").value == run.key
    text = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    assert "Draw one of its classes" in text and "circle, triangle, arrow" in text
    assert "digit" not in text.lower() and "Your handwriting" not in [h.value for h in at.header]


def test_deleting_a_data_set_that_runs_use_asks_first_and_keeps_them(own_run):
    store, run = own_run
    at = app("data")
    assert f"`{run.key[:8]}`" in at.warning[0].value
    assert at.button(key="delete_dataset").disabled
    at.checkbox(key="confirm_delete_data").check().run()
    at.button(key="delete_dataset").click().run()
    assert not at.exception and store.data_set("shapes") is None
    assert store.get(run.key).has_weights() and store.get(run.key).config.data_spec().classes == tuple(NAMES)
    for page in ("results", "playground", "compare"):  # the run is whole without its data set
        assert not app(page).exception


def test_an_imported_run_without_its_images_says_so_on_results(own_run, tmp_path, monkeypatch):
    store, run = own_run
    blob = bundle_bytes(store, run.key)
    other = tmp_path / "other"
    monkeypatch.setenv("NNAPP_HOME", str(other))
    monkeypatch.setattr(datasets, "_folders", [])  # as on another machine: only the other store's folder is seen
    load.cache_clear()
    streamlit.cache_data.clear()
    import_bundle(Store(other), blob)
    at = app("results")
    assert not at.exception and at.selectbox(key="results_pick").value == run.key
    assert any("test images cannot be shown" in i.value for i in at.info)
    assert list(at.dataframe[0].value["class"]) == NAMES
    assert json.loads(at.code[0].value)["dataset"] == run.config.dataset


def test_a_bad_example_is_deleted_from_its_gallery(own_run):
    store, run = own_run
    before = store.data_set("shapes")
    at = app("data")
    (first,) = [b for b in at.button if b.key and b.key.startswith("delete_example_")][:1]
    first.click().run()
    after = store.data_set("shapes")
    assert not at.exception and after.total == before.total - 1 and after.ref != before.ref
    assert store.get(run.key).config.dataset == before.ref  # the run keeps the version it trained on


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A store with a run on a generated colour data set (32×32 pictures, three classes), made once."""
    from nnapp.data.make import add_files
    from tests.owndata import colour_zip

    home = tmp_path_factory.mktemp("colour")
    store = Store(home)
    made, _ = add_files(store, "colours", colour_zip(per_class=12))
    return home, train_or_load(small_data(made.ref).replace(epochs=4, patience=0), store).key


def test_every_page_and_inside_view_works_on_a_colour_run(home, colour_run):
    shutil.copytree(colour_run[0], home)
    at = app()
    at.query_params["run"] = colour_run[1]
    at.switch_page(PAGES["results"].path).run()
    assert not at.exception and at.selectbox(key="results_pick").value == colour_run[1]
    assert image_captions(at) or any("No misclassified" in i.value for i in at.info)
    for view in ("Filters", "Weights and gradients", "Dead units", "Embedding projector"):
        at.radio(key="inside_view").set_value(view).run()
        assert not at.exception, view
    for page in ("playground", "compare", "train", "data", "home"):
        at.switch_page(PAGES[page].path).run()
        assert not at.exception, page
