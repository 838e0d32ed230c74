"""Canaries for every workaround of a library's internals (nnapp/system/compat.py, panels/compat.py).

Each canary fails when the workaround stops applying (the private piece it relies on has moved) or when
the library no longer needs it (the cost it avoids is gone): either way the workaround is to be looked
at again, and removed if it no longer earns its place. What each one gains is in benchmarks/bench_compat.py.
"""

import inspect
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnapp.system.compat import UNDECORATED, eager, enabled
from panels.compat import CANVAS_BUILD, SEND_DELAY, patched_bundle, shim

ROOT = Path(__file__).resolve().parent.parent


def test_a_workaround_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("NNAPP_WORKAROUNDS_OFF", raising=False)
    assert enabled("eager_optimizers")
    monkeypatch.setenv("NNAPP_WORKAROUNDS_OFF", "keep_freed_memory, eager_optimizers")
    assert not enabled("eager_optimizers") and not enabled("keep_freed_memory") and enabled("canvas_send_delay")
    monkeypatch.setenv("NNAPP_WORKAROUNDS_OFF", "all")
    assert not enabled("canvas_send_delay")


# --- eager_optimizers ---------------------------------------------------------------------------------


def test_canary_torch_optimisers_still_carry_dynamo_wrappers():
    """eager() applies: torch still wraps its optimisers' methods, and nnapp's classes are their undecorated form."""
    cls = torch.optim.AdamW
    assert any(inspect.unwrap(getattr(cls, name)) is not getattr(cls, name) for name in UNDECORATED), "torch no longer wraps"
    assert eager(cls) is not cls and eager(cls).zero_grad is inspect.unwrap(cls.zero_grad)


def test_canary_building_a_torch_optimiser_still_imports_dynamo():
    """The cost eager() avoids is still there: building torch's own AdamW imports torch._dynamo."""
    code = "import sys, torch; torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()); print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip() == "True", "torch's optimisers no longer import dynamo: nnapp.system.compat.eager can go"


# --- keep_freed_memory ------------------------------------------------------------------------------------

FAULTS = """
import resource, sys, torch
from nnapp.system.compat import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
from nnapp.engine.models import build_model
from nnapp.engine.presets import PRESETS
torch.set_num_threads(1)
model = build_model(PRESETS["fast"])
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_canary_glibc_still_faults_in_each_steps_memory_unless_kept():
    """keep_freed_memory() applies (glibc's mallopt takes it) and still matters: 20 steps of the fast preset's
    network fault in a few thousand pages with it, five times as many with glibc's own thresholds."""
    faults = {}
    for mode in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True, cwd=ROOT)
        applied, faults[mode] = out.stdout.split()
        assert applied == ("True" if mode == "keep" else "None")
    assert int(faults["keep"]) * 5 < int(faults["default"]), faults


# --- canvas_send_delay --------------------------------------------------------------------------------------


def test_canary_the_pinned_canvas_bundle_has_its_send_delay_once_and_loses_only_that():
    (script,) = CANVAS_BUILD.glob("index-*.js")
    source = script.read_text(encoding="utf-8")
    bundle = patched_bundle(source)
    assert bundle is not None, "streamlit-drawable-canvas changed: see panels/compat.py"
    built, served = SEND_DELAY
    assert built not in bundle and bundle.count(served) == 1
    assert bundle.replace(served, built) == source  # the one change


def test_a_canvas_bundle_without_the_delay_is_left_alone():
    assert patched_bundle("export default () => {};") is None
    assert patched_bundle("Bc = 200, x; Bc = 200, y") is None  # ambiguous: not touched


def test_the_shim_loads_the_served_bundle_relative_to_the_app():
    text = shim("nnapp-canvas-0123456789abcdef.js")
    assert 'new URL("app/static/nnapp-canvas-0123456789abcdef.js", document.baseURI)' in text
    assert "export default" in text


# --- session_id, upload_manager (panels/guard.py) --------------------------------------------------------------


def test_canary_a_script_run_knows_its_session_id():
    """compat.session_id applies: a script run's context still carries the id its upload URLs are made with."""
    from streamlit.testing.v1 import AppTest

    from panels.compat import session_id

    at = AppTest.from_string("import streamlit as st\nfrom panels.compat import session_id\nst.text(session_id())").run()
    assert not at.exception, at.exception
    assert at.text[0].value not in ("", "None")  # AppTest names its session "test session id"
    assert session_id() is None  # outside a script run


def test_canary_streamlit_keeps_uploads_where_the_guard_looks():
    """The upload route is still /_stcore/upload_file/SESSION/FILE, the runtime still has its upload store, and
    that store still lets a file go by session and id (what guard.Ledger calls)."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.runtime import Runtime
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec
    from streamlit.web.server.starlette.starlette_routes import BASE_ROUTE_UPLOAD_FILE

    from panels.guard import UPLOAD

    assert BASE_ROUTE_UPLOAD_FILE == "_stcore/upload_file" and UPLOAD.search("/base/_stcore/upload_file/s-1/f-2").groups() == (
        "s-1",
        "f-2",
    )
    assert isinstance(Runtime.__dict__["uploaded_file_mgr"], property)
    store = MemoryUploadedFileManager("/_stcore/upload_file")
    store.add_file("s", UploadedFileRec("f", "a.zip", "application/zip", b"x" * 10))
    assert [len(r.data) for r in store.get_files("s", ["f"])] == [10]
    store.remove_file("s", "f")
    assert store.get_files("s", ["f"]) == []


def test_canary_streamlit_still_keeps_a_strangers_uploads_without_the_guard(tmp_path):
    """What the guard is for: served without it (app.py alone), a session that never signed in uploads freely."""
    pytest.importorskip("playwright")
    import os

    from tests.appserver import ARGS, CHROMIUM, serve
    from tests.test_upload_guard import PASSWORD, Stranger

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with serve(tmp_path, address="0.0.0.0", env={"NNAPP_PASSWORD": PASSWORD}, script="app.py") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        assert Stranger(browser, url).upload("unguarded", 1000) == 204, (
            "Streamlit now refuses them itself: panels/guard.py can go"
        )
        browser.close()
