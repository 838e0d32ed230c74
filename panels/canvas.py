"""The Playground's drawing canvas: streamlit-drawable-canvas, sending each stroke the moment the pen lifts.

The component waits 200 ms after every change before it sends the drawing (a constant in its built
JavaScript, `SEND_DELAY` below), which alone took the Playground's mouse-up → prediction past 200 ms.
nnapp serves the same bundle with that wait set to 0 from Streamlit's static folder (written once per
bundle, named by its checksum) and points the package's component at it. Where that cannot be done (another
version of the package, a folder nnapp cannot write, static serving off), the package's own component
is used unchanged and the page works as before, 200 ms slower.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import streamlit as st

from nnapp.files import atomic_write

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"  # served at app/static/ (server.enableStaticServing)
SEND_DELAY = ("Bc = 200,", "Bc = 0,")  # the bundle's debounce before it sends a drawing: as built, as served
HTML = '<div class="canvas-root"></div>'  # as the package declares its component
# Found without importing the package: its import declares its component, which needs a running app.
BUILD = Path(importlib.util.find_spec("streamlit_drawable_canvas").origin).parent / "frontend" / "build"


def patched_bundle(source: str) -> str | None:
    """The component's JavaScript with no wait before sending; None when the bundle is not the one expected."""
    built, served = SEND_DELAY
    return source.replace(built, served) if source.count(built) == 1 else None


def shim(name: str) -> str:
    """The component's module as Streamlit loads it: the patched bundle, fetched once from the static folder."""
    return (
        f'const bundle = import(new URL("app/static/{name}", document.baseURI));\n'
        "export default async (args) => (await bundle).default(args);\n"
    )


@st.cache_resource
def _install() -> bool:
    """Serve the patched bundle and make the package's st_canvas use it; False leaves the package as it is."""
    try:
        return _serve_patched()
    except Exception as err:  # whatever it is, the package's own component still draws
        log.warning("streamlit-drawable-canvas's own component is used: %s", err)
        return False


def _serve_patched() -> bool:
    if not st.get_option("server.enableStaticServing"):
        return False
    import streamlit_drawable_canvas as package

    scripts, styles = sorted(BUILD.glob("index-*.js")), sorted(BUILD.glob("index-*.css"))
    if len(scripts) != 1 or len(styles) != 1:
        log.warning("streamlit-drawable-canvas: unexpected bundle files in %s; its own component is used", BUILD)
        return False
    source = scripts[0].read_text(encoding="utf-8")
    bundle = patched_bundle(source)
    if bundle is None:
        log.warning("streamlit-drawable-canvas %s: its send delay was not found; its own component is used", package.__version__)
        return False
    name = f"nnapp-canvas-{hashlib.sha256(bundle.encode()).hexdigest()[:16]}.js"
    if not (STATIC / name).exists():  # a folder nnapp cannot write: _install says so and falls back
        STATIC.mkdir(exist_ok=True)
        atomic_write(STATIC / name, bundle.encode())
    css = styles[0].read_text(encoding="utf-8")
    package.out = st.components.v2.component("nnapp_canvas", js=shim(name), css=css, html=HTML, isolate_styles=True)
    return True


def st_canvas(**kwargs):
    """streamlit_drawable_canvas.st_canvas, sending each stroke at once where that could be set up."""
    import streamlit_drawable_canvas as package

    _install()
    return package.st_canvas(**kwargs)
