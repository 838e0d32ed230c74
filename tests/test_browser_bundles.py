"""Bundles in the running app, in Chromium: text a bundle brings is shown as text on every page (no heading, link
or image of its making, nothing fetched from its sites), and a bundle imported, deleted and imported again in
one browser session, all by clicking, is imported again."""

import hashlib
import io
import json
import os
import sqlite3
import zipfile
from pathlib import Path

import pytest

from nnapp.bundle.export import bundle_bytes
from nnapp.store.store import Store
from tests.appserver import CHROMIUM, serve
from tests.gestures import no_exception, settle

pytestmark = pytest.mark.browser
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EVIL = "evil.example"
# Markdown, HTML and Streamlit's own directives, as a stranger's bundle would write them.
HOSTILE = (
    f"# PWNED heading [a link](https://{EVIL}/link) ![an image](https://{EVIL}/md.png) "
    f"<img src='https://{EVIL}/html.png'> <a href='https://{EVIL}/a'>html link</a> **bold** :red[red] "
    f"$x^2$ https://{EVIL}/bare <script>document.title='PWNED'</script>"
)


@pytest.fixture(scope="module")
def bundle(fast_run, fast_check):
    """(the fast run's bundle, its key)."""
    store, run = fast_run
    return bundle_bytes(store, run.key), run.key


def hostile(blob: bytes) -> bytes:
    """The bundle with the hostile text in every text field of its record, checksums made to match."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(parts["manifest.json"])
    manifest["run"].update(device=HOSTILE, message=HOSTILE)
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in parts.items() if n != "manifest.json"}
    parts["manifest.json"] = json.dumps(manifest).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def made_by_the_text(page) -> dict:
    """What of the page the hostile text made: links and images to its site, headings, a changed title."""
    return page.evaluate(
        """(evil) => ({
            links: [...document.querySelectorAll('a')].filter(a => (a.href || '').includes(evil)).length,
            images: [...document.querySelectorAll('img')].filter(i => (i.src || '').includes(evil)).length,
            headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].filter(h => h.textContent.includes('PWNED')).length,
            title: document.title.includes('PWNED'),
            scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('PWNED')).length,
        })""",
        EVIL,
    )


def test_text_from_a_bundle_is_shown_as_text_on_every_page(bundle, tmp_path, browser):
    from nnapp.bundle.importer import import_bundle

    blob, key = bundle
    store = Store(tmp_path / "runs")
    import_bundle(store, hostile(blob))
    with sqlite3.connect(store.db_path) as db:  # and a row another nnapp damaged, its status the same text
        row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        db.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(row))})", ("00000000000000ad", row[1], HOSTILE, *row[3:]))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if EVIL in r.url else None)
    with serve(store.home) as url:
        page.goto(f"{url}/results?run={key}")
        page.get_by_role("heading", name="Results").first.wait_for(timeout=60_000)
        settle(page)
        shown = page.inner_text("body").replace("\u2060", "")  # the word joiners that keep addresses from linking
        assert "# PWNED heading [a link](https://evil.example/link)" in shown  # shown, as text
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "results-hostile-bundle.png"), full_page=True)
        seen = {"Results": made_by_the_text(page)}
        for title in ["Home", "Train", "Sweep", "Compare", "Playground", "Results"]:
            page.get_by_role("link", name=title).first.click()
            page.get_by_role("heading", name=title if title != "Home" else "nnapp").first.wait_for(timeout=60_000)
            settle(page)
            no_exception(page)
            seen[title] = made_by_the_text(page)
        page.goto(f"{url}/results?run={HOSTILE[:38]}")  # a link anyone can send
        page.get_by_role("heading", name="Results").first.wait_for(timeout=60_000)
        settle(page)
        seen["a hostile link"] = made_by_the_text(page)
    context.close()
    nothing = {"links": 0, "images": 0, "headings": 0, "title": False, "scripts": 0}
    assert all(found == nothing for found in seen.values()), seen
    assert fetched == []


def test_a_bundle_imported_deleted_and_imported_again_in_one_session(bundle, tmp_path, browser):
    """By clicking: upload a bundle, upload it again (it is there already), delete the run on Compare, upload it once
    more in the same browser session: it is imported, not answered from what the session remembered."""
    blob, key = bundle
    path = tmp_path / f"nnapp-{key}.zip"
    path.write_bytes(blob)
    home = tmp_path / "runs"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    with serve(home) as url:
        page.goto(f"{url}/results")
        page.get_by_role("heading", name="Results").first.wait_for(timeout=60_000)
        settle(page)
        upload(page, path)
        page.get_by_text(f"Imported run {key}").wait_for(timeout=60_000)
        assert Store(home).get(key) is not None
        upload(page, path)
        page.get_by_text("is already in the store").wait_for(timeout=60_000)
        delete_on_compare(page)
        assert Store(home).get(key) is None
        page.get_by_role("link", name="Results").first.click()
        page.get_by_role("heading", name="Results").first.wait_for(timeout=60_000)
        settle(page)
        upload(page, path)
        page.get_by_text(f"Imported run {key}").wait_for(timeout=60_000)
        settle(page)
        no_exception(page)
        assert Store(home).get(key) is not None and page.get_by_text("is already in the store").count() == 0
        page.screenshot(path=str(SHOTS / "results-imported-again.png"), full_page=True)
    context.close()


def upload(page, path: Path) -> None:
    """Open the import fold if it is closed, remove the file uploaded before (its chip's x), click Upload and
    choose the bundle in the file chooser."""
    fold = page.locator("[data-testid=stExpander]", has_text="Import a run").first
    if fold.locator("details").get_attribute("open") is None:
        fold.get_by_text("Import a run").click()
    remove = fold.get_by_role("button", name=f"Remove {path.name}")
    if remove.count():
        remove.click()
        settle(page)
    with page.expect_file_chooser() as chooser:
        fold.get_by_role("button", name="Upload", exact=True).click()
    chooser.value.set_files(str(path))
    settle(page)


def delete_on_compare(page) -> None:
    """Tick the run's row in Compare's table, click Delete…, then Delete in the dialog that asks."""
    page.get_by_role("link", name="Compare").first.click()
    page.get_by_role("heading", name="Compare").first.wait_for(timeout=60_000)
    settle(page)
    grid = page.locator("[data-testid=stDataFrame]").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box, left of its first cell
    settle(page)
    page.get_by_role("button", name="Delete 1 selected run…").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=30_000)
    dialog.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("No runs yet").first.wait_for(timeout=60_000)
    settle(page)
