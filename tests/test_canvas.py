"""The Playground's canvas bundle: the pinned streamlit-drawable-canvas gets its send delay removed, nothing else."""

from panels.canvas import BUILD, SEND_DELAY, patched_bundle, shim


def test_the_pinned_bundle_has_its_send_delay_once_and_loses_only_that():
    (script,) = BUILD.glob("index-*.js")
    source = script.read_text(encoding="utf-8")
    bundle = patched_bundle(source)
    assert bundle is not None, "streamlit-drawable-canvas changed: see panels/canvas.py"
    built, served = SEND_DELAY
    assert built not in bundle and bundle.count(served) == 1
    assert bundle.replace(served, built) == source  # the one change


def test_a_bundle_without_the_delay_is_left_alone():
    assert patched_bundle("export default () => {};") is None
    assert patched_bundle("Bc = 200, x; Bc = 200, y") is None  # ambiguous: not touched


def test_the_shim_loads_the_served_bundle_relative_to_the_app():
    text = shim("nnapp-canvas-0123456789abcdef.js")
    assert 'new URL("app/static/nnapp-canvas-0123456789abcdef.js", document.baseURI)' in text
    assert "export default" in text
