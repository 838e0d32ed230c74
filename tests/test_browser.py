"""The running app in headless Chromium: every page, and digits drawn on the real canvas with the mouse."""

import os
import re
import time
from pathlib import Path

import pytest

from nnapp.engine.names import default_name
from nnapp.engine.presets import PRESETS
from tests.appserver import CHROMIUM, serve
from tests.digits import canvas_path
from tests.gestures import canvas_of, draw, no_exception, settle, table_rows, tick_row
from tests.nondigits import SHAPES

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium at /usr/bin/chromium for the browser tests")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(fast_run, fast_check):
    """The app over a store holding the fast preset trained on MNIST and its not-a-digit check (as a job
    leaves them: nothing is made in the background while the tests draw)."""
    store, run = fast_run
    with serve(store.home) as url:
        yield url, run


def test_every_page_opens_without_an_exception(server, page):
    url, run = server
    page.goto(url)
    page.get_by_text("Latest runs").wait_for(timeout=30_000)
    settle(page)
    no_exception(page)
    assert default_name(run.config) in page.content()  # runs by name
    for title in ["Train", "Sweep", "Results", "Compare", "Playground", "Home"]:
        page.get_by_role("link", name=title).first.click()
        page.get_by_role("heading", name=title if title != "Home" else "nnapp").first.wait_for(timeout=30_000)
        settle(page)
        no_exception(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)


def predicted(pg) -> str:
    pg.wait_for_selector("[data-testid=predicted-digit]", timeout=30_000)
    return pg.locator("[data-testid=predicted-digit]").inner_text().strip()


def clear(pg):
    """Clear the canvas and wait for its replacement: a cleared canvas is a new component, mounted anew."""
    old = canvas_of(pg).element_handle()
    pg.get_by_role("button", name="Clear").click()
    old.wait_for_element_state("hidden", timeout=30_000)
    canvas_of(pg).wait_for(state="visible", timeout=30_000)
    settle(pg)
    pg.get_by_text("Draw a digit").first.wait_for(timeout=30_000)


# (left, top, width, height) boxes on the 280 px canvas: some small and off-centre, some large
PLACES = [(70, 40, 130, 200), (15, 15, 70, 100), (150, 130, 100, 130), (20, 10, 240, 260)]


def test_drawn_digits_are_read(server, page):
    """Digits drawn with the mouse are read, through the canvas bundle that sends each stroke at once."""
    url, _ = server
    scripts = []
    page.on("request", lambda request: scripts.append(request.url))
    page.goto(url + "/playground")
    page.get_by_text("Draw a digit").first.wait_for(timeout=30_000)
    settle(page)
    no_exception(page)
    results = {}
    for digit in range(10):
        place = PLACES[digit % len(PLACES)]
        draw(page, canvas_path(digit, place))
        settle(page)
        results[digit] = predicted(page)
        if digit == 3:
            page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        clear(page)
    wrong = {d: r for d, r in results.items() if r != str(d)}
    assert len(wrong) <= 1, f"misread: {wrong}"
    no_exception(page)
    assert any("/app/static/nnapp-canvas-" in u for u in scripts), "the canvas was not the one without the send delay"


def test_saved_drawing_appears_in_the_personal_set(server, page):
    url, _ = server
    page.goto(url + "/playground")
    page.get_by_text("Your set is empty").wait_for(timeout=30_000)
    settle(page)
    draw(page, canvas_path(7, PLACES[0]))
    settle(page)
    assert predicted(page) == "7"
    page.get_by_role("button", name="Save drawing to my set").click()
    settle(page)
    page.get_by_text("1 drawings").first.wait_for(timeout=30_000)
    assert page.get_by_text("on your set").count() >= 1  # the model is evaluated on it
    no_exception(page)


def test_a_letter_drawn_on_the_canvas_is_not_a_digit(server, page):
    """Letters and a hash sign get "This doesn't look like a digit" as the answer, with the best guess still shown below it."""
    url, _ = server
    page.goto(url + "/playground")
    page.get_by_text("Draw a digit").first.wait_for(timeout=30_000)
    settle(page)
    answers = {}
    for name, (left, top, w, h) in (("A", PLACES[0]), ("W", PLACES[3]), ("#", PLACES[2])):
        draw(page, [[(left + x * w, top + y * h) for x, y in stroke] for stroke in SHAPES[name]])
        settle(page)
        answers[name] = predicted(page)
        if name == "A":
            assert page.get_by_text("its best guess is").count() >= 1
            assert page.get_by_text("Details: the not-a-digit check").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "playground-not-a-digit.png"), full_page=True)
        clear(page)
    assert all(a == "This doesn't look like a digit" for a in answers.values()), answers


def test_a_drawn_digit_shows_the_activation_grids(server, browser):
    url, run = server
    context = browser.new_context(viewport={"width": 1400, "height": 2600})  # tall: the grids sit below the canvas
    page = context.new_page()
    page.goto(url + "/playground")
    page.get_by_text("Draw a digit").first.wait_for(timeout=30_000)
    settle(page)
    draw(page, canvas_path(3, PLACES[0]))
    settle(page)
    assert predicted(page) == "3"
    page.get_by_text("Inside the network: each layer's activations").first.click()  # a fold, worked out when opened
    page.get_by_text("conv 1: 16 channels").first.wait_for(timeout=30_000)
    settle(page)
    titles = page.locator(".js-plotly-plot .gtitle").evaluate_all("els => els.map(e => e.textContent)")
    assert "conv 1: 16 channels, 14×14" in titles, titles
    assert "conv 2: 32 channels, 7×7" in titles
    assert "dense 1: 128 units, after the activation" in titles and "output: 10 logits" in titles
    assert "conv 1, channel 0 (14×14)" in titles
    grid = page.locator(".js-plotly-plot", has=page.locator(".gtitle", has_text="conv 2: 32 channels"))
    assert grid.locator(".hm image").count() == 1  # the maps themselves were drawn
    numbers = grid.locator(".textpoint text").evaluate_all("els => els.map(e => e.textContent)")
    assert numbers == [str(c) for c in range(32)]  # each map numbered
    no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "playground-activations.png"), full_page=True)
    context.close()


# Pixels of a colour (as the curves draw it: train blue, validation orange) on a canvas, within a tolerance.
COUNT_COLOUR = """(canvas, [r, g, b]) => {
    const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4)
        if (px[i + 3] > 200 && Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 60) n++;
    return n;
}"""
TRAIN_BLUE, VAL_ORANGE = (31, 119, 180), (255, 127, 14)


def fill_train_form(page, images: str, epochs: str):
    """The seed-mlp preset with `images` training images and `epochs`, Retrain ticked: its checkbox."""
    # Folded when the page attached to a run still active. Decided by the expander's own state: the form's
    # widgets may not be drawn yet, and clicking Configure then would fold an open form.
    configure = page.locator("[data-testid=stExpander] details").first
    configure.wait_for(state="attached", timeout=30_000)
    if configure.get_attribute("open") is None:
        page.get_by_text("Configure", exact=True).first.click()
    preset = page.get_by_label("Start from a preset").first
    preset.wait_for(state="visible", timeout=30_000)
    preset.click()
    page.get_by_role("option", name="seed-mlp", exact=True).click()
    settle(page)
    for label, value in (("Training images (0 = all)", images), ("Epochs", epochs)):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
        settle(page)
    retrain = page.get_by_role("checkbox", name="Retrain even if this configuration finished before")
    if not retrain.is_checked():
        page.get_by_text("Retrain even if this configuration finished before").click()
        settle(page)
    assert retrain.is_checked()
    return retrain


def test_the_train_page_draws_a_launched_runs_curves(server, page):
    """The curves' canvas shows empty axes before a launch, then the run's steps and epochs as it trains and
    once it has ended (it adds a run to the store: after the tests that read the stored runs)."""
    url, _ = server
    page.goto(url + "/train")
    page.get_by_role("heading", name="Train").first.wait_for(timeout=30_000)
    settle(page)
    canvas = page.locator("canvas.nnapp-curves")
    canvas.wait_for(timeout=30_000)
    assert canvas.get_attribute("data-points") == "[0,0]"
    blue_before, orange_before = (canvas.evaluate(COUNT_COLOUR, c) for c in (TRAIN_BLUE, VAL_ORANGE))
    assert 0 < blue_before < 200 and 0 < orange_before < 200  # the legend's lines alone
    retrain = fill_train_form(page, "3000", "2")
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
    settle(page)
    no_exception(page)
    assert canvas.count() == 1  # redrawn in place, not stacked
    steps, epochs = map(int, canvas.get_attribute("data-points").strip("[]").split(","))
    per_epoch = PRESETS["seed-mlp"].replace(train_subset=3000).steps_per_epoch()
    assert (steps, epochs) == (2 * per_epoch, 2)  # every step drawn (fewer than the chart's budget), both epochs
    assert canvas.evaluate(COUNT_COLOUR, TRAIN_BLUE) > 5 * blue_before  # the train lines
    assert canvas.evaluate(COUNT_COLOUR, VAL_ORANGE) > orange_before + 80  # two validation markers a panel
    page.screenshot(path=str(ARTIFACTS / "train-curves.png"), full_page=True)
    # Folded at the launch, the form is not drawn; opened again, it holds what was launched.
    assert not page.get_by_role("spinbutton", name="Epochs", exact=True).count()
    page.get_by_text("Configure", exact=True).first.click()
    settle(page)
    assert page.get_by_role("spinbutton", name="Training images (0 = all)", exact=True).input_value() == "3000"
    assert page.get_by_role("spinbutton", name="Epochs", exact=True).input_value() == "2"
    assert retrain.is_checked()


def test_a_training_run_is_watched_without_rerunning_the_page(server, page):
    """While a run trains, the page polls its progress (panels/live.py): the bar and curves move, the server
    sends the page nothing until the run has ended, and then the result is drawn."""
    url, _ = server
    frames, polls = [], []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(time.monotonic())))
    page.on("response", lambda r: polls.append((time.monotonic(), r)) if "/_nnapp/live" in r.url else None)
    page.goto(url + "/train")
    page.get_by_role("heading", name="Train").first.wait_for(timeout=30_000)
    settle(page)
    fill_train_form(page, "0", "2")  # all 50,000 images: a few seconds of training
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("Test accuracy").first.wait_for(timeout=180_000)
    settle(page)
    no_exception(page)
    bodies = [(t, r.json()) for t, r in polls if r.ok]
    training = [(t, b) for t, b in bodies if b["active"]]
    assert len(training) >= 2, "the run was not polled while it trained"
    steps = [int(re.search(r"step (\d+)/", b["text"]).group(1)) for _, b in training if "step" in b["text"]]
    assert len(set(steps)) >= 2 and steps == sorted(steps)  # the bar moved, forward
    # and the curves grew: they reach further (their point count is capped, thinned evenly: live.POINTS)
    reach = [max(b["data"]["step_x"], default=0) for _, b in (training[0], training[-1])]
    assert reach[1] > reach[0]
    ended = next(t for t, b in bodies if not b["active"])  # the poll that found the end
    assert not [t for t in frames if training[1][0] < t < ended]  # no rerun drawn while it trained
    found = next(r for t, r in polls if t == ended)
    assert "since=running" in found.url and "wait=1" in found.url  # a poll held for the end, near the ETA
    assert page.locator(".live-bar").count() == 0 or not page.locator(".live-bar").first.is_visible()
    assert page.locator("[data-testid=stProgress]").filter(has_text="done at epoch 2/2").count() == 1


def test_a_page_that_cannot_reach_the_route_refreshes_instead(server, page):
    """Behind a proxy that does not pass the route, the page falls back to rerunning every few seconds."""
    url, _ = server
    page.route("**/_nnapp/live**", lambda route: route.fulfill(status=502, body="bad gateway"))
    page.goto(url + "/train")
    page.get_by_role("heading", name="Train").first.wait_for(timeout=30_000)
    settle(page)
    fill_train_form(page, "0", "5")  # long enough to be refreshed after three failed polls
    page.get_by_role("button", name="Launch").click()
    refreshed = page.locator("[data-testid=stProgress]").filter(has_text=re.compile(r"step [1-9]\d*/\d+ ·"))
    refreshed.first.wait_for(timeout=60_000)  # Streamlit's own bar, redrawn by a refresh, while it trains
    page.get_by_text("Test accuracy").first.wait_for(timeout=180_000)
    settle(page)
    no_exception(page)
    assert page.locator("[data-testid=stProgress]").filter(has_text="done at epoch 5/5").count() == 1


def test_a_sweep_started_in_the_browser_fills_its_table_and_opens_the_best_trial(server, page):
    url, _ = server
    page.goto(url + "/sweep")
    page.get_by_role("heading", name="Sweep").first.wait_for(timeout=30_000)
    settle(page)
    for label, value in (("Training images per trial (0 = all)", "600"), ("Trials", "2"), ("Parallel trials", "2")):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
        settle(page)
    page.get_by_role("button", name="Start sweep").click()
    page.get_by_text("2 of 2 trials ended").wait_for(timeout=240_000)
    page.get_by_role("heading", name=re.compile(r": done$")).wait_for(timeout=30_000)  # drawn after the live refresh ends
    settle(page)
    no_exception(page)
    table = page.locator("[data-testid=stDataFrame]")
    assert table.count() == 1 and table.get_by_text("done").count() >= 2
    page.screenshot(path=str(ARTIFACTS / "sweep.png"), full_page=True)
    best = page.locator("[data-testid=stMetricValue]").nth(1).inner_text()  # the best trial's test accuracy
    page.get_by_role("button", name="Open the best trial in Results").click()
    page.get_by_role("heading", name="Results").first.wait_for(timeout=30_000)
    settle(page)
    no_exception(page)
    assert page.locator("[data-testid=stMetricValue]").nth(1).inner_text() == best
    open_a_trial_then_train_the_best_on_all_data(page, url)


def open_a_trial_then_train_the_best_on_all_data(page, url):
    """A trial's row ticked opens its run; "Train the best config on all data" shows that config in the Train
    page's form, and a cancel of it reads as a pause with Launch again."""
    page.get_by_role("link", name="Sweep").first.click()
    page.get_by_text("2 of 2 trials ended").wait_for(timeout=30_000)
    settle(page)
    trial = re.match(r"\d+", table_rows(page, "sweep_table")[1]).group()  # the second row's trial number
    tick_row(page, "sweep_table", 1)
    page.get_by_role("button", name=f"Open trial {trial} in Results").click()
    page.get_by_role("heading", name="Results").first.wait_for(timeout=30_000)
    settle(page)
    no_exception(page)
    page.get_by_role("link", name="Sweep").first.click()
    page.get_by_text("2 of 2 trials ended").wait_for(timeout=30_000)
    settle(page)
    page.get_by_role("button", name="Train the best config on all data").click()
    page.locator(".st-key-cancel").get_by_role("button", name="Cancel").wait_for(timeout=60_000)
    shown = page.get_by_role("combobox", name="Start from a preset").input_value()
    assert re.fullmatch(r"fast(, edited)?", shown), shown  # the config of the run on screen, not the default preset
    page.locator(".st-key-cancel").get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Launch again").wait_for(timeout=60_000)
    settle(page)
    no_exception(page)
    assert (
        page.get_by_text("This run was cancelled").count() == 1 and page.locator("[data-testid=stAlertContentError]").count() == 0
    )
