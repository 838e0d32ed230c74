"""The shape of the code base: limits that keep it readable, and the rules its layout depends on."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "nnapp").glob("*.py"))
VIEWS = sorted((ROOT / "views").glob("*.py"))
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 350


def functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_core_functions_and_modules_are_short():
    long_functions = {f"{p.name}:{name}": n for p in CORE for name, n in functions(p) if n > MAX_FUNCTION_LINES}
    long_modules = {p.name: n for p in CORE if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long_functions, long_functions
    assert not long_modules, long_modules


def test_core_never_imports_streamlit():
    for path in CORE:
        assert not re.search(r"^\s*(import|from) streamlit", path.read_text(), re.M), path.name


def test_statuses_are_named_in_one_place():
    """Which statuses are finished, active or a problem is decided in nnapp/records.py alone."""
    status = r"""["'](queued|running|done|failed|cancelled|diverged|interrupted|pruned)["']"""
    literal_tuple = re.compile(rf"[(\[{{]\s*{status}\s*,\s*{status}")
    for path in [*CORE, *VIEWS, ROOT / "ui.py"]:
        if path.name != "records.py":
            assert not literal_tuple.search(path.read_text()), path.name


def test_pages_live_in_views_not_pages():
    """Streamlit serves a pages/ folder by itself on a cold deep link, bypassing app.py's navigation."""
    assert not (ROOT / "pages").exists()
    from ui import PAGES

    assert {Path(p.path).name for p in PAGES.values()} == {p.name for p in VIEWS}
    assert all(p.path.startswith("views/") for p in PAGES.values())


def test_page_paths_are_written_once():
    """Every switch_page and page_link goes through ui.PAGES."""
    for path in [*VIEWS, ROOT / "app.py", *sorted((ROOT / "tests").glob("*.py"))]:
        if path.name != "test_structure.py":
            assert "views/" not in path.read_text(), path.name


def test_imports_leave_torch_threads_alone():
    """Threads are set where a process starts (app, job, CLI), never as a side effect of an import."""
    import subprocess
    import sys

    code = (
        "import torch; n = torch.get_num_threads(); "
        "import nnapp.train, nnapp.runs, nnapp.jobs, nnapp.predict, nnapp.__main__, ui; "
        "assert torch.get_num_threads() == n, (n, torch.get_num_threads())"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_cli_lists_and_shows_without_torch():
    import subprocess
    import sys

    code = "import sys, nnapp.__main__, nnapp.arch, nnapp.store; assert not {'torch', 'optuna', 'ray'} & set(sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_readme_names_tests_that_exist():
    """Each promise in the README's Reliability section names the test that checks it: those tests must exist."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    files = set(re.findall(r"(test_\w+)\.py", section))
    names = set(re.findall(r"\b(test_\w+)\b(?!\.py)", section)) - files
    defined = {name for path in (ROOT / "tests").glob("test_*.py") for name, _ in functions(path)}
    assert files <= {p.stem for p in (ROOT / "tests").glob("test_*.py")}, files
    assert names and names <= defined, sorted(names - defined)
