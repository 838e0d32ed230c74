"""Every interaction a page promises, by its gesture in Chromium: a click on a confusion-matrix cell, a projector
point and a feature map; ticking runs and deleting them; renaming a run; a drawing that is not a digit saved with
a chosen label and deleted; Launch near the top of the Train page; a newcomer's first walk, timed."""

import contextlib
import json
import os
import shutil
from itertools import count
from pathlib import Path

import pytest

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.names import default_name
from nnapp.engine.presets import PRESETS
from nnapp.engine.states import Status
from nnapp.jobs.runs import train_or_load
from nnapp.store.store import Store
from tests.appserver import CHROMIUM, serve
from tests.gestures import (
    answer,
    click_point,
    draw,
    draw_digit,
    first_contact,
    no_exception,
    open_page,
    pick_option,
    settle,
    table_rows,
    tick_row_with,
)
from tests.nondigits import SHAPES

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SMALL = RunConfig(model="mlp", hidden=(32,), train_subset=600, val_fraction=0.2, batch_size=32, epochs=2, lr=3e-3)

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium at /usr/bin/chromium for the browser tests")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def served(fast_run, fast_check, tmp_path_factory):
    """A copy of the fast run's store (its not-a-digit check included) with three small runs, one of them
    cancelled after a few steps, served: (url, store, the fast run, {name: small run})."""
    store, run = fast_run
    home = tmp_path_factory.mktemp("gestures") / "runs"
    shutil.copytree(store.home, home)
    copy = Store(home)
    steps = count()
    small = {
        "named": train_or_load(SMALL, copy),
        "other": train_or_load(SMALL.replace(seed=1), copy),
        "cancelled": train_or_load(SMALL.replace(seed=2, epochs=3), copy, should_stop=lambda: next(steps) > 20),
    }
    assert small["cancelled"].status == Status.CANCELLED
    with serve(home) as url:
        yield url, copy, run, small


def test_a_click_on_a_confusion_cell_shows_those_digits(served, page):
    url, store, run, _ = served
    open_page(page, url, f"results?run={run.key}", "Misclassified test images")
    confusion = run.test["confusion"]
    true, pred = max(((t, p) for t in range(10) for p in range(10) if t != p), key=lambda tp: confusion[tp[0]][tp[1]])
    cell = click_point(page, "confusion", 1, true * 10 + pred)  # the cell's marker: the mouse goes where it is drawn
    assert cell == [true, pred]
    no_exception(page)
    assert page.get_by_role("combobox", name="True class", exact=True).input_value() == str(true)
    assert page.get_by_role("combobox", name="Predicted class", exact=True).input_value() == str(pred)
    images = page.locator("[data-testid=stImage] img")
    alts = [images.nth(i).get_attribute("alt") for i in range(images.count())]
    wanted = [a for a in alts if a and a.startswith("test image")]
    assert len(wanted) == min(confusion[true][pred], 60)
    assert all(a.endswith(f"a {true} read as {pred}") for a in wanted), wanted[:3]


def test_a_click_on_a_projector_point_shows_its_digit(served, page):
    url, _, run, _ = served
    open_page(page, url, f"results?run={run.key}", "Inside the network")
    page.get_by_text("Embedding projector", exact=True).click()
    page.locator(".st-key-projection .js-plotly-plot").wait_for(timeout=120_000)
    settle(page)
    index = click_point(page, "projection", 3, 5)  # a test digit of true class 3, or one drawn over it
    no_exception(page)
    page.get_by_text(f"test digit #{index}").first.wait_for(timeout=30_000)
    labels = served[1].predictions(run.key)[0]
    true = int(load("mnist").test_y[index])
    assert page.get_by_text(f"True class {true}, predicted {labels[index]}").count() == 1


def test_a_click_on_a_feature_map_shows_it_large(served, browser):
    url, _, run, _ = served
    context = browser.new_context(viewport={"width": 1400, "height": 2600})  # the grids sit below the canvas
    page = context.new_page()
    open_page(page, url, f"playground?run={run.key}", "Draw a digit")
    draw_digit(page, 3)
    assert answer(page) == "3"
    page.get_by_text("Inside the network: each layer's activations").click()  # a fold, worked out once opened
    page.locator(".st-key-act_grid_0 .js-plotly-plot").wait_for(timeout=30_000)
    assert click_point(page, "act_grid_0", -1, 5) == 5  # the tiles' markers (the last trace): channel 5 of conv 1
    no_exception(page)
    titles = page.locator(".js-plotly-plot .gtitle").evaluate_all("els => els.map(e => e.textContent)")
    assert "conv 1, channel 5 (14×14)" in titles, titles
    assert page.get_by_label("Channel (0–15)").input_value() == "5"
    context.close()


def test_renaming_a_run_names_it_on_every_page(served, page):
    url, store, _, small = served
    run = small["named"]
    open_page(page, url, f"results?run={run.key}", "Name, notes and tags")
    assert page.get_by_role("heading", name=default_name(run.config)).count() == 1
    page.get_by_text("Name, notes and tags", exact=True).click()
    page.get_by_label("Name", exact=True).fill("my *first* <b>mlp</b>")
    page.get_by_label("Notes").fill("600 digits, two epochs")
    page.get_by_label("Tags (comma-separated)").fill("demo, tiny")
    page.get_by_role("button", name="Save name, notes and tags").click()
    settle(page)
    no_exception(page)
    assert page.get_by_role("heading", name="my *first* <b>mlp</b>").count() == 1  # as text, not Markdown or HTML
    assert store.labels(run.key).tags == ("demo", "tiny")
    open_page(page, url, "compare", "Search names, notes and tags")
    search = page.get_by_label("Search names, notes and tags")
    search.fill("two epochs")
    search.press("Enter")
    settle(page)
    rows = table_rows(page, "runs_table")
    assert len(rows) == 1 and rows[0].startswith("my *first* <b>mlp</b>")
    open_page(page, url, "", "Latest runs")
    assert page.get_by_text("my *first* <b>mlp</b>").count() == 1


def test_ticked_runs_are_overlaid_per_step_and_deleted_after_a_confirmation(served, page):
    url, store, _, small = served
    open_page(page, url, "compare", "Tick one or more rows")
    names = {k: default_name(r.config) for k, r in small.items()}
    for which in ("other", "cancelled"):
        tick_row_with(page, "runs_table", names[which])
    no_exception(page)
    legend = page.locator(".st-key-overlay .legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert len(legend) == 2 and names["other"] in legend  # one entry per run, by its name
    (stopped,) = [entry for entry in legend if entry != names["other"]]
    assert stopped.startswith(f"{names['cancelled']} (cancelled at epoch ") and stopped.endswith(" of 3)")
    page.get_by_role("button", name="Delete 2 selected runs…").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=30_000)
    assert names["other"] in dialog.inner_text() and names["cancelled"] in dialog.inner_text()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    settle(page)
    no_exception(page)
    said = page.get_by_text("Deleted 2 runs: ").first.inner_text()
    assert names["other"] in said and names["cancelled"] in said
    assert store.get(small["other"].key) is None and store.get(small["cancelled"].key) is None
    assert not store.weights_path(small["other"].key).exists()
    assert len(table_rows(page, "runs_table")) == len(store.runs())


def test_a_drawing_that_is_no_digit_needs_a_chosen_label_and_its_delete_a_confirmation(served, page):
    url, store, run, _ = served
    open_page(page, url, f"playground?run={run.key}", "Draw a digit")
    left, top, w, h = (70, 40, 130, 200)
    draw(page, [[(left + x * w, top + y * h) for x, y in stroke] for stroke in SHAPES["A"]])
    before = len(store.drawings()[1])  # the session's store may hold drawings saved by earlier tests
    assert answer(page) == "This doesn't look like a digit"
    assert page.get_by_text("Details: the not-a-digit check").count() == 1  # the score behind a details expander
    save = page.get_by_role("button", name="Save drawing to my set")
    assert save.is_disabled()  # no label by default: not the model's guess in one click
    pick_option(page, "True label of this drawing", "4")
    assert save.is_enabled()
    save.click()
    settle(page)
    page.get_by_text(f"{before + 1} drawings").first.wait_for(timeout=30_000)
    assert len(store.drawings()[1]) == before + 1 and store.drawings()[1][-1] == 4
    page.get_by_role("button", name="Delete the last saved drawing…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Delete", exact=True).click()
    settle(page)
    assert page.get_by_text("Deleted your drawing of a 4.").count() == 1 and len(store.drawings()[1]) == before
    no_exception(page)


def tabs_to(page, name: str, limit: int = 30, skip: bool = False) -> int:
    """Key presses from the top of the page until the button `name` has the focus; with `skip`, the first two
    are Tab to Streamlit's "Skip to main content" link and Enter on it, past the pages' links."""
    page.evaluate(  # the focus on an unfocusable mark at the top of the page: the next Tab starts there
        "() => { const top = document.createElement('div'); top.tabIndex = -1; document.body.prepend(top); top.focus(); }"
    )
    start = 0
    if skip:
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.innerText.trim()") == "Skip to main content"
        page.keyboard.press("Enter")
        start = 2
    for presses in range(start + 1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.innerText.trim()") == name:
            return presses
    return limit + 1


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_launch_is_near_the_top_of_the_train_page(served, browser, size):
    url, *_ = served
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500)
    page = context.new_page()
    open_page(page, url, "train", "Start from a preset")
    launch = page.get_by_role("button", name="Launch", exact=True)
    bottom = launch.bounding_box()["y"] + launch.bounding_box()["height"]
    if width > 500:
        assert bottom <= height  # on screen without scrolling
        links = page.get_by_test_id("stSidebarNav").get_by_role("link").count()
        assert tabs_to(page, "Launch") <= 1 + links + 3  # the skip link, one per page, then the page's title and preset
        assert tabs_to(page, "Launch", skip=True) <= 5
    else:
        assert bottom <= 1.5 * height
    context.close()


def job_processes(home: Path) -> set[int]:
    """The job processes (python -m nnapp.tasks) of the server over `home`."""
    import psutil

    found = set()
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "nnapp.tasks" in " ".join(p.info["cmdline"] or ()) and p.environ().get("NNAPP_HOME") == str(home):
                found.add(p.pid)
    return found


def test_a_newcomers_first_walk_reaches_a_test_accuracy_and_a_drawn_digit(browser, tmp_path):
    """Home → one click → the fast preset trains (its form holds it) → its test accuracy → Playground → a drawn 7.
    The job process that trains it was started with the server, before the page was opened. The walk's times are
    written to test-artifacts/first-contact.json (benchmarks/bench.py section 21 times it)."""
    home = tmp_path / "runs"
    with serve(home) as url:
        warm = job_processes(home)
        assert len(warm) == 1  # started with the server
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        times = first_contact(page, url)
        no_exception(page)
        context.close()
    assert times["read"] == "7"
    assert Store(home).get(PRESETS["fast"].key()).pid in warm  # trained by it: no wait for torch and MNIST
    print(f"first contact: {times}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "first-contact.json").write_text(json.dumps(times))
