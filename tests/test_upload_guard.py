"""What a browser may leave in the server's memory (panels/guard.py): on a shared server nothing a session uploads is
kept before it has signed in; what any session holds, and all of them together, is capped, the oldest uploads let
go first; the metrics route needs the password. Tried as a stranger would: a real browser session, its session id
read from the server's first message, files sent straight to the upload route."""

import base64
import os
import re

import pytest

from panels.guard import RECORD, Ledger
from tests.appserver import serve

PASSWORD = "correct horse battery staple"
MIB = 1 << 20


class Stranger:
    """A browser session on the app, and what it sends the upload route without going through any widget."""

    def __init__(self, browser, url: str):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.url, self.context = url, browser.new_context()
        self.page, ids = self.context.new_page(), []

        def first_message(payload) -> None:
            if isinstance(payload, bytes) and not ids:
                msg = ForwardMsg.FromString(payload)
                if msg.HasField("new_session"):
                    ids.append(msg.new_session.initialize.session_id)

        self.page.on("websocket", lambda ws: ws.on("framereceived", first_message))
        self.page.goto(url)
        self.page.wait_for_function("() => document.querySelector('[data-testid=stApp]')", timeout=60_000)
        self.page.wait_for_timeout(1000)
        self.session = ids[0]
        self.xsrf = next(c["value"] for c in self.context.cookies() if c["name"] == "_streamlit_xsrf")

    def upload(self, name: str, size: int) -> int:
        response = self.page.request.put(
            f"{self.url}/_stcore/upload_file/{self.session}/{name}",
            multipart={"file": {"name": f"{name}.zip", "mimeType": "application/zip", "buffer": os.urandom(size)}},
            headers={"X-Xsrftoken": self.xsrf},
        )
        return response.status

    def sign_in(self) -> None:
        self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("button", name="Train my first model").wait_for(timeout=60_000)


def held(page, url: str) -> int:
    """Bytes of uploads the server holds, as its (password-protected) metrics say (they are computed at most
    every 5 s: read once that long has passed)."""
    page.wait_for_timeout(5_200)
    auth = "Basic " + base64.b64encode(f"anyone:{PASSWORD}".encode()).decode()
    text = page.request.get(f"{url}/_stcore/metrics", headers={"Authorization": auth}).text()
    found = re.search(r'cache_memory_bytes\{cache_type="UploadedFileManager",cache=""\} (\d+)', text)
    return int(found[1]) if found else 0


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A shared server (every interface, a password), its caps small: 16 MiB a session, 24 MiB in all."""
    env = {"NNAPP_PASSWORD": PASSWORD, "NNAPP_UPLOAD_LIMITS": "16,24"}
    with serve(tmp_path_factory.mktemp("guarded"), address="0.0.0.0", env=env) as url:
        yield url


@pytest.mark.browser
def test_uploads_of_a_session_that_has_not_signed_in_are_not_kept(browser, shared):
    stranger = Stranger(browser, shared)
    assert [stranger.upload(f"big{i}", 8 * MIB) for i in range(6)] == [403] * 6
    assert held(stranger.page, shared) == 0
    stranger.sign_in()  # the same session, once it has signed in, may upload
    assert stranger.upload("after", 1 * MIB) == 204 and held(stranger.page, shared) == 1 * MIB  # Streamlit's own count
    stranger.context.close()


@pytest.mark.browser
def test_what_sessions_hold_is_capped_and_the_oldest_let_go(browser, shared):
    first, second = Stranger(browser, shared), Stranger(browser, shared)
    for who in (first, second):
        who.sign_in()
    base = held(first.page, shared)
    assert [first.upload(f"a{i}", 6 * MIB) for i in range(5)] == [204] * 5  # 30 MiB sent, 16 MiB kept
    assert held(first.page, shared) - base <= 16 * MIB
    assert [second.upload(f"b{i}", 6 * MIB) for i in range(3)] == [204] * 3  # both together: at most 24 MiB
    assert held(first.page, shared) <= 24 * MIB
    # the newest upload is there for the app: a bundle of nonsense uploaded by clicking is read (and refused)
    first.page.get_by_role("link", name="Results").first.click()
    first.page.get_by_text("Import a run").click()
    with first.page.expect_file_chooser() as chooser:
        first.page.get_by_role("button", name="Upload", exact=True).click()
    chooser.value.set_files(files=[{"name": "x.zip", "mimeType": "application/zip", "buffer": b"PK not a bundle"}])
    first.page.get_by_text("Not imported: that is not an nnapp bundle").wait_for(timeout=60_000)
    for who in (first, second):
        who.context.close()


@pytest.mark.browser
def test_the_metrics_of_a_shared_server_need_its_password(browser, shared, tmp_path):
    page = browser.new_page()
    assert page.request.get(f"{shared}/_stcore/metrics").status == 401
    wrong = "Basic " + base64.b64encode(b"anyone:guess").decode()
    assert page.request.get(f"{shared}/_stcore/metrics", headers={"Authorization": wrong}).status == 401
    right = "Basic " + base64.b64encode(f"anyone:{PASSWORD}".encode()).decode()
    assert page.request.get(f"{shared}/_stcore/metrics", headers={"Authorization": right}).status == 200
    with serve(tmp_path / "local") as local:  # this machine only: as before
        assert page.request.get(f"{local}/_stcore/metrics").status == 200
    page.close()


class Files:
    """Streamlit's upload store as the guard uses it: get_files and remove_file."""

    def __init__(self):
        self.files = {}

    def add(self, sid, fid, size):
        self.files[(sid, fid)] = type("Rec", (), {"data": b"x" * size, "name": ""})()

    def get_files(self, sid, fids):
        return [self.files[(sid, f)] for f in fids if (sid, f) in self.files]

    def remove_file(self, sid, fid):
        self.files.pop((sid, fid), None)


def test_the_ledger_lets_the_oldest_go_first_and_keeps_the_newest(monkeypatch):
    monkeypatch.setenv("NNAPP_UPLOAD_LIMITS", "0.01,0.015")  # 10 KiB... about: a session, in all
    ledger, files = Ledger(), Files()
    for i in range(4):  # each counted as 1,000 bytes and its record's 4 KiB
        files.add("s1", f"f{i}", 1000)
        ledger.kept("s1", f"f{i}", files)
    assert sorted(files.files) == [("s1", "f2"), ("s1", "f3")]  # the two newest fit the session's cap
    files.add("s2", "g0", 9000)
    ledger.kept("s2", "g0", files)
    assert ("s2", "g0") in files.files and ledger.held() <= 0.015 * MIB
    files.add("s1", "huge", 50_000)  # larger than any cap on its own: kept, the rest of its session let go
    ledger.kept("s1", "huge", files)
    assert ("s1", "huge") in files.files and not [k for k in files.files if k[0] == "s1" and k[1] != "huge"]
    files.files.clear()  # Streamlit let every file go (the sessions closed): the ledger forgets them too
    files.add("s3", "h0", 10)
    ledger.kept("s3", "h0", files)
    assert ledger.held() == 10 + RECORD  # an upload costs its record too
    for i in range(10):  # empty files are not free: they fill a session's cap as well
        files.add("s4", f"e{i}", 0)
        ledger.kept("s4", f"e{i}", files)
    assert len([k for k in files.files if k[0] == "s4"]) == int(0.01 * MIB) // RECORD
    assert ledger.start("s3") and ledger.start("s3") and not ledger.start("s3")  # two at a time
