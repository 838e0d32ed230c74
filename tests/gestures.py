"""What a person does in Chromium, as tests and benchmarks do it: clicks, ticks and strokes on the real elements
(Playwright's locator.click() and page.mouse), never a write to a widget's state."""

from __future__ import annotations

import itertools
import time

from tests.digits import canvas_path

ROW = 35  # pixels of a row (and of the header) in Streamlit's dataframes
PLACE = (70, 40, 130, 200)  # a digit's box on the 280-px canvas


def settle(pg, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script."""
    pg.wait_for_timeout(400)
    pg.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout)
    pg.wait_for_timeout(300)


def no_exception(pg) -> None:
    shown = pg.locator("[data-testid=stException]")
    assert shown.count() == 0, shown.first.inner_text()


def open_page(pg, url: str, path: str, wait_text: str, timeout: float = 60_000) -> None:
    pg.goto(f"{url}/{path}")
    pg.get_by_text(wait_text).first.wait_for(timeout=timeout)
    settle(pg)


def table_rows(pg, key: str) -> list[str]:
    """The text of each body row of dataframe `key`, top to bottom (from the grid's accessible table)."""
    rows = pg.locator(f".st-key-{key} [role=row]")
    rows.first.wait_for(state="attached", timeout=30_000)  # the grid draws its table after the page has settled
    return [rows.nth(i).inner_text() for i in range(1, rows.count())]


def tick_row(pg, key: str, index: int) -> None:
    """Click the tick box of body row `index` of dataframe `key` (its grid is drawn on a canvas)."""
    grid = pg.locator(f".st-key-{key} [data-testid=stDataFrame]")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    pg.mouse.click(box["x"] + 18, box["y"] + ROW * (index + 1) + ROW / 2)
    settle(pg)


def tick_row_with(pg, key: str, text: str) -> None:
    """Tick the row of dataframe `key` that holds `text`."""
    rows = table_rows(pg, key)
    (index,) = [i for i, row in enumerate(rows) if text in row]
    tick_row(pg, key, index)


def plot_point(pg, key: str, trace: int, point: int) -> tuple[float, float]:
    """The page coordinates of point `point` of trace `trace` (negative: from the last) in Plotly chart `key`."""
    graph = pg.locator(f".st-key-{key} .js-plotly-plot").first
    graph.scroll_into_view_if_needed()
    return graph.evaluate(
        """(gd, [t, i]) => {
            const trace = gd._fullData[t < 0 ? gd._fullData.length + t : t];
            const xa = gd._fullLayout[trace.xaxis.replace("x", "xaxis")], ya = gd._fullLayout[trace.yaxis.replace("y", "yaxis")];
            const box = gd.getBoundingClientRect();
            return [box.left + xa._offset + xa.d2p(trace.x[i]), box.top + ya._offset + ya.d2p(trace.y[i])];
        }""",
        [trace, point],
    )


HOVERED = """(gd) => new Promise((ok, no) => {
    const start = Date.now();
    (function look() {
        const hover = gd._hoverdata || [];
        if (hover.length) ok(hover[0].customdata === undefined ? null : hover[0].customdata);
        else if (Date.now() - start > 3000) no(new Error("nothing under the pointer"));
        else setTimeout(look, 50);
    })();
})"""


def click_point(pg, key: str, trace: int, point: int):
    """Move the mouse onto point `point` of trace `trace` in Plotly chart `key` and click it. Returns the customdata
    of the point the click picked: the one under the pointer (in a dense cloud, another may lie on top)."""
    x, y = plot_point(pg, key, trace, point)
    graph = pg.locator(f".st-key-{key} .js-plotly-plot").first
    picked = None
    for nudge in (0, 1, -1, 0):  # Plotly finds the point under the pointer on hover, once it has drawn the chart
        pg.mouse.move(x + nudge, y)
        try:
            picked = graph.evaluate(HOVERED)
            break
        except Exception:  # noqa: BLE001 (no hover yet: move again)
            pg.wait_for_timeout(500)
    pg.mouse.click(x, y)
    settle(pg)
    return picked


def canvas_of(pg):
    return pg.locator("canvas.upper-canvas").first


def draw(pg, strokes) -> None:
    """Strokes (lists of (x, y) on the canvas) drawn with the mouse."""
    canvas = canvas_of(pg)
    canvas.wait_for(state="visible", timeout=60_000)
    box = canvas.bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        pg.mouse.move(box["x"] + x, box["y"] + y)
        pg.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for t in (0.34, 0.67, 1.0):
                pg.mouse.move(box["x"] + x0 + (x1 - x0) * t, box["y"] + y0 + (y1 - y0) * t)
        pg.mouse.up()
    settle(pg)


def draw_digit(pg, digit: int) -> None:
    draw(pg, canvas_path(digit, PLACE))


def answer(pg, timeout: float = 60_000) -> str:
    """The Playground's answer: a digit, or the sentence that the drawing does not look like one."""
    shown = pg.locator("[data-testid=predicted-digit]")
    shown.first.wait_for(timeout=timeout)
    return shown.first.inner_text().strip()


def pick_option(pg, label: str, option: str) -> None:
    """Open the selectbox labelled `label` and click `option`."""
    pg.get_by_role("combobox", name=label).click()
    wanted = pg.get_by_role("option", name=option, exact=True)
    try:
        wanted.wait_for(timeout=1500)
    except Exception:  # noqa: BLE001 (near the page's end the click may leave it closed: the arrow key opens it)
        pg.keyboard.press("ArrowDown")
    wanted.click()
    settle(pg)


def first_contact(pg, url: str) -> dict[str, float]:
    """A newcomer's walk: Home → "Train my first model" → its test accuracy → "Draw a digit for it" → a drawn 7
    → the answer. Seconds from the first click to the first progress, to the test accuracy, and to the answer."""
    open_page(pg, url, "", "Train my first model")
    start = time.perf_counter()
    pg.get_by_role("button", name="Train my first model").click()
    pg.get_by_text("Train", exact=True).first.wait_for(timeout=60_000)
    pg.locator(".live-bar:not([hidden]), [data-testid=stProgress]").first.wait_for(timeout=60_000)
    progress = time.perf_counter() - start
    pg.get_by_text("Test accuracy").first.wait_for(timeout=180_000)
    accuracy = time.perf_counter() - start
    settle(pg)
    pg.get_by_role("button", name="Draw a digit for it").click()
    pg.get_by_text("Draw a digit").first.wait_for(timeout=60_000)
    settle(pg)
    draw_digit(pg, 7)
    read = answer(pg)
    return {"progress": progress, "accuracy": accuracy, "answer": time.perf_counter() - start, "read": read}
