"""A data set of your own in headless Chromium: classes drawn with the mouse on the Data page, trained from the
Train page, read back in the Playground; a zip of class folders uploaded through the page."""

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from nnapp.store.store import Store
from tests.appserver import serve
from tests.gestures import canvas_of, no_exception, settle
from tests.owndata import drawn_zip, zip_of
from tests.shapes import canvas_path, mouse_draw, place, varied
from tests.test_browser import ARTIFACTS, predicted

pytestmark = pytest.mark.browser
CLASSES = ["circle", "triangle", "arrow"]


@pytest.fixture(scope="module")
def data_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("data-runs")
    with serve(home) as url:
        yield url, home


def counter(pg) -> int:
    return int(pg.locator(".st-key-draw_counter [data-testid=stMetricValue]").inner_text())


def save_drawing(pg, strokes) -> None:
    """Draw on the Data page's canvas, wait for what the network will see, click Save example, wait for the
    counter to move and a fresh canvas."""
    before, old = counter(pg), canvas_of(pg).element_handle()
    for attempt in range(3):  # a canvas that has just mounted may miss the first strokes a robot draws at once
        mouse_draw(pg, canvas_of(pg), strokes)
        try:
            pg.get_by_text("what the network will see").wait_for(timeout=3_000)  # the drawing reached the server
            break
        except PlaywrightTimeout:
            assert attempt < 2, "the canvas never sent the drawing"
    pg.get_by_role("button", name="Save example").click()
    moved = "n => { const e = document.querySelector('.st-key-draw_counter [data-testid=stMetricValue]'); return e && Number(e.innerText) === n; }"
    pg.wait_for_function(moved, arg=before + 1, timeout=30_000)
    old.wait_for_element_state("hidden", timeout=30_000)
    canvas_of(pg).wait_for(state="visible", timeout=30_000)


def test_a_data_set_drawn_in_chromium_trains_and_the_playground_reads_each_class(data_server, page):
    url, home = data_server
    page.goto(url + "/data")
    page.get_by_role("heading", name="Data").first.wait_for(timeout=30_000)
    settle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill("shapes")
    page.get_by_role("textbox", name="Classes, one per line").fill("\n".join(CLASSES))
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Not ready to train yet").wait_for(timeout=30_000)
    settle(page)
    rng = np.random.default_rng(1)
    for name in CLASSES:
        page.locator("[data-testid=stRadio]").get_by_text(name, exact=True).click()
        settle(page)
        for _ in range(10):
            save_drawing(page, canvas_path(varied(name, rng), place(rng)))
    assert Store(home).data_set("shapes").counts == (10, 10, 10)
    page.reload()
    page.get_by_text("Ready to train").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "data.png"), full_page=True)
    page.get_by_role("button", name="Train on it").click()
    page.get_by_role("heading", name="Train").first.wait_for(timeout=30_000)
    settle(page)
    page.get_by_text("Small-data defaults").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
    settle(page)
    no_exception(page)
    page.goto(url + "/playground")
    page.get_by_text("Draw one of its classes").first.wait_for(timeout=30_000)
    settle(page)
    answers = {}
    for name in CLASSES:  # a new drawing of each class, never saved
        old = canvas_of(page).element_handle()
        mouse_draw(page, canvas_of(page), canvas_path(varied(name, rng), place(rng)))
        settle(page)
        answers[name] = predicted(page)
        page.get_by_role("button", name="Clear").click()
        old.wait_for_element_state("hidden", timeout=30_000)
        settle(page)
    assert answers == {name: name for name in CLASSES}, answers
    assert page.get_by_text("not a digit").count() == 0 and page.get_by_text("not-a-digit").count() == 0
    no_exception(page)


def upload(page, path) -> None:
    """Choose a file in the page's uploader and wait until the page has it (its name shown, the rerun done)."""
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(path))
    page.locator("[data-testid=stFileChipName]", has_text=path.name).wait_for(timeout=30_000)
    settle(page)


def test_a_zip_of_class_folders_through_the_data_page(data_server, page, tmp_path):
    url, home = data_server
    (tmp_path / "hostile.zip").write_bytes(zip_of({"a/0.png": b"x", "../../evil.png": b"x"}))
    (tmp_path / "drawn.zip").write_bytes(drawn_zip(names=["star", "heart"], per_class=10))
    page.goto(url + "/data")
    page.get_by_role("heading", name="Data").first.wait_for(timeout=30_000)
    settle(page)
    page.get_by_label("Data set").first.click()
    page.get_by_role("option", name="＋ New data set").click()
    settle(page)
    page.get_by_role("textbox", name="Name of the data set the zip makes").fill("hostile")
    upload(page, tmp_path / "hostile.zip")
    page.get_by_role("button", name="Make the data set from the zip").click()
    page.get_by_text("leads outside it").wait_for(timeout=30_000)
    assert Store(home).data_set("hostile") is None
    page.get_by_role("textbox", name="Name of the data set the zip makes").fill("doodles")
    upload(page, tmp_path / "drawn.zip")
    page.get_by_role("button", name="Make the data set from the zip").click()
    page.get_by_text("Ready to train").wait_for(timeout=60_000)
    settle(page)
    no_exception(page)
    assert Store(home).data_set("doodles").counts == (10, 10)
    page.get_by_text("All examples, by class").click()
    settle(page)
    assert page.locator("[data-testid=stExpander] [data-testid=stImage]").count() >= 10
