"""Every workaround of Streamlit's or a component's internals (nnapp's own side: nnapp/system/compat.py).

Each is a named function with its reason in a line, a canary test in tests/test_compat.py that fails once
the library no longer needs it or it no longer applies, and a figure in benchmarks/bench_compat.py.
NNAPP_WORKAROUNDS_OFF=name[,name...] (or "all") turns one off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import streamlit as st

from nnapp.system.compat import enabled
from nnapp.system.files import atomic_write

log = logging.getLogger(__name__)


# --- streamlit-drawable-canvas: no wait before a drawing is sent ------------------------------------------

STATIC = Path(__file__).resolve().parent.parent / "static"  # served at app/static/ (server.enableStaticServing)
SEND_DELAY = ("Bc = 200,", "Bc = 0,")  # the bundle's debounce before it sends a drawing: as built, as served
# As the package declares its component, with a name for screen readers (the page's caption names it for all).
CANVAS_HTML = '<div class="canvas-root" role="application" aria-label="Drawing area: draw one digit, 0 to 9"></div>'
# Found without importing the package: its import declares its component, which needs a running app.
CANVAS_BUILD = Path(importlib.util.find_spec("streamlit_drawable_canvas").origin).parent / "frontend" / "build"


def patched_bundle(source: str) -> str | None:
    """The canvas component's JavaScript with no wait before sending; None when the bundle is not the one expected."""
    built, served = SEND_DELAY
    return source.replace(built, served) if source.count(built) == 1 else None


def shim(name: str) -> str:
    """The component's module as Streamlit loads it: the patched bundle, fetched once from the static folder."""
    return (
        f'const bundle = import(new URL("app/static/{name}", document.baseURI));\n'
        "export default async (args) => (await bundle).default(args);\n"
    )


@st.cache_resource
def canvas_sends_at_once() -> bool:
    """Serve streamlit-drawable-canvas's bundle with its 200-ms wait before sending a drawing set to 0, and make
    the package's st_canvas use it. False leaves the package as it is (another version of it, a folder nnapp
    cannot write, static serving off, or this workaround off): the page works as before, 200 ms slower."""
    if not enabled("canvas_send_delay"):
        return False
    try:
        return _serve_patched_canvas()
    except Exception as err:  # whatever it is, the package's own component still draws
        log.warning("streamlit-drawable-canvas's own component is used: %s", err)
        return False


def _serve_patched_canvas() -> bool:
    if not st.get_option("server.enableStaticServing"):
        return False
    import streamlit_drawable_canvas as package

    scripts, styles = sorted(CANVAS_BUILD.glob("index-*.js")), sorted(CANVAS_BUILD.glob("index-*.css"))
    if len(scripts) != 1 or len(styles) != 1:
        log.warning("streamlit-drawable-canvas: unexpected bundle files in %s; its own component is used", CANVAS_BUILD)
        return False
    bundle = patched_bundle(scripts[0].read_text(encoding="utf-8"))
    if bundle is None:
        log.warning("streamlit-drawable-canvas %s: its send delay was not found; its own component is used", package.__version__)
        return False
    name = f"nnapp-canvas-{hashlib.sha256(bundle.encode()).hexdigest()[:16]}.js"
    if not (STATIC / name).exists():  # a folder nnapp cannot write: canvas_sends_at_once says so and falls back
        STATIC.mkdir(exist_ok=True)
        atomic_write(STATIC / name, bundle.encode())
    css = styles[0].read_text(encoding="utf-8")
    package.out = st.components.v2.component("nnapp_canvas", js=shim(name), css=css, html=CANVAS_HTML, isolate_styles=True)
    return True


# --- Streamlit: who a script run is, and the server's uploads ------------------------------------------------


def session_id() -> str | None:
    """The id of the browser session this script run serves (the one in its upload URLs), or None outside a run.
    Streamlit has no public API for it; panels/guard.py keeps uploads of sessions that have not signed in
    out of the server's memory with it."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return getattr(ctx, "session_id", None)


def upload_manager():
    """Streamlit's store of uploaded files (its public UploadedFileManager methods get_files and remove_file),
    or None before the runtime has started."""
    from streamlit import runtime

    return runtime.get_instance().uploaded_file_mgr if runtime.exists() else None
