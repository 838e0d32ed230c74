"""Sharing a server safely: localhost by default, a password on every page when shared (AppTest and Chromium),
no error details for the browser, and links that open a run (?run=KEY) on Results and the Playground."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from nnapp.jobs.runs import train_or_load
from ui import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def runs(store, tiny):
    """Two finished MNIST runs."""
    cnn = tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=())
    return train_or_load(cnn, store), train_or_load(cnn.replace(seed=1), store)


@pytest.fixture
def shared():
    """The server as ./run-app.sh --share starts it: listening on every interface."""
    before = (st_config.get_option("server.address"), st_config.get_option("client.showErrorDetails"))
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", before[0])
    st_config.set_option("client.showErrorDetails", before[1])


def app(page: str | None = None, secrets: dict | None = None, link: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets.update(secrets or {})
    if link:
        at.query_params["run"] = link
    at.run()
    if page:
        at.switch_page(PAGES[page].path).run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("title", "markdown", "caption", "subheader", "info") for e in at.get(kind))


def test_the_server_listens_on_this_machine_only_by_default():
    settings = (ROOT / ".streamlit" / "config.toml").read_text()
    server = settings.split("[server]")[1].split("\n[")[0]
    assert re.findall(r'^address = "(.*)"$', server, re.M) == ["127.0.0.1"]
    script = (ROOT / "run-app.sh").read_text()
    assert "--server.address 0.0.0.0 --client.showErrorDetails none" in script  # only behind --share


def test_sharing_without_a_password_does_not_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NNAPP_PASSWORD"}
    if (ROOT / ".streamlit" / "secrets.toml").exists():
        pytest.skip("this checkout has a secrets file")
    proc = subprocess.run(["bash", str(ROOT / "run-app.sh"), "--share"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--share needs a password" in proc.stderr


@pytest.mark.parametrize("page", PAGES)
def test_with_a_password_every_page_asks_for_it_first(runs, monkeypatch, page):
    monkeypatch.setenv("NNAPP_PASSWORD", PASSWORD)
    at = app(page, link=runs[0].key)
    assert at.text_input(key="password") and at.title[0].value == "nnapp" and len(at.title) == 1
    assert runs[0].key[:8] not in everything_shown(at)
    assert not at.get("plotly_chart") and not at.get("dataframe")


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_app(runs, monkeypatch):
    monkeypatch.setenv("NNAPP_PASSWORD", PASSWORD)
    at = app("results", link=runs[1].key)
    at.text_input(key="password").input(PASSWORD[:-1])
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and runs[1].key not in everything_shown(at)
    at.text_input(key="password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Results" and at.selectbox(key="results_pick").value == runs[1].key  # the link still holds
    assert "password" not in at.session_state


def test_the_password_can_live_in_streamlit_secrets(runs):
    at = app(secrets={"password": PASSWORD})
    assert at.text_input(key="password")
    at.text_input(key="password").input(PASSWORD)
    at.button[0].click().run()
    assert at.title[0].value == "nnapp" and at.button(key="train_first")


def test_a_shared_server_without_a_password_shows_nothing(runs, shared, monkeypatch):
    monkeypatch.delenv("NNAPP_PASSWORD", raising=False)
    at = app("results")
    assert at.error[0].value.startswith("This nnapp server is open to the network without a password")
    assert runs[0].key[:8] not in everything_shown(at) and not at.get("text_input")
    assert st_config.get_option("client.showErrorDetails") == "none"


def test_a_shared_server_hides_error_details_and_refuses_a_short_password(runs, shared, monkeypatch):
    monkeypatch.setenv("NNAPP_PASSWORD", "secret")
    at = app()
    assert "shorter than 8 characters" in at.error[0].value and not at.get("text_input")
    assert st_config.get_option("client.showErrorDetails") == "none"


def test_a_link_opens_the_run_on_results_and_the_playground(runs):
    first, second = runs
    for page, picker in (("results", "results_pick"), ("playground", "playground_pick")):
        at = app(page, link=first.key)
        assert at.selectbox(key=picker).value == first.key and at.query_params["run"] == first.key
        at.selectbox(key=picker).set_value(second.key).run()  # a pick made after following the link stands
        assert at.selectbox(key=picker).value == second.key and at.query_params["run"] == second.key
        at.run()
        assert at.selectbox(key=picker).value == second.key


def test_a_link_to_a_missing_run_says_so(runs):
    at = app("results", link="ffffffffffffffff")
    assert at.warning[0].value == "There is no run `ffffffffffffffff` here."
    at = app("playground", link="ffffffffffffffff")
    assert at.warning[0].value == "Run `ffffffffffffffff` is not a finished model to try here."


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def shared_server(fast_run):
    """The app listening on every interface with a password, as ./run-app.sh --share starts it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from tests.appserver import serve

    store, run = fast_run
    with serve(store.home, address="0.0.0.0", env={"NNAPP_PASSWORD": PASSWORD}) as url:
        yield url, run


@pytest.mark.browser
def test_the_password_gate_in_chromium(shared_server):
    from playwright.sync_api import sync_playwright

    from tests.appserver import ARGS
    from tests.gestures import settle

    url, run = shared_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{url}/results?run={run.key}")  # a deep link, before signing in
        password = page.get_by_label("Password", exact=True)
        password.wait_for(timeout=30_000)
        settle(page)
        assert run.key[:8] not in page.content() and page.get_by_role("heading", name="Results").count() == 0
        password.fill("guess")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong password.").wait_for(timeout=30_000)
        assert run.key[:8] not in page.content()
        password.fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Results").wait_for(timeout=30_000)
        settle(page)
        assert run.key in page.content() and f"run={run.key}" in page.url
        other = browser.new_page()  # another browser session is not signed in
        other.goto(url)
        other.get_by_label("Password", exact=True).wait_for(timeout=30_000)
        assert run.key[:8] not in other.content()
        browser.close()
