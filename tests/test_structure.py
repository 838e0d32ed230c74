"""The shape of the code base: limits that keep it readable, and the rules its layout depends on."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "nnapp").rglob("*.py"))
VIEWS = sorted((ROOT / "views").glob("*.py"))
PRODUCT = [*CORE, *VIEWS, *sorted((ROOT / "panels").glob("*.py")), ROOT / "ui.py", ROOT / "app.py", ROOT / "serve.py"]
MAX_FUNCTION_LINES = 60
# nnapp's packages, lowest first: each may import those before it, never one after it (nnapp/__init__.py says what each owns).
LAYERS = ("system", "engine", "store", "jobs", "predict", "data", "inside", "charts", "sweep", "bundle", "tasks", "cli")
STATES = ROOT / "nnapp" / "engine" / "states.py"


def functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_core_functions_are_short():
    long_functions = {f"{p.relative_to(ROOT)}:{name}": n for p in CORE for name, n in functions(p) if n > MAX_FUNCTION_LINES}
    assert not long_functions, long_functions


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def nnapp_imports(source: str, package: str) -> set[str]:
    """The nnapp modules `source` imports, lazy ones inside functions included, those under TYPE_CHECKING not."""
    tree = ast.parse(source)
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nnapp"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "nnapp":
                found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the nnapp modules it imports (a name that is not a module, e.g. a class, counts as its module)."""
    modules = {module_name(p): p for p in CORE}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for target in nnapp_imports(path.read_text(), package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "nnapp":
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a package into one later in LAYERS."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    layer = lambda module: module.split(".")[1] if module.count(".") > 1 else None  # noqa: E731  (nnapp.__main__: above all)
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if layer(a) and layer(b) and rank[layer(a)] < rank[layer(b)]
    )


def test_nnapp_holds_packages_only():
    """Every module lives in a package that names its concern; nnapp/ itself holds __init__ and __main__."""
    loose = {p.name for p in (ROOT / "nnapp").glob("*.py")} - {"__init__.py", "__main__.py"}
    assert not loose, loose
    packages = {p.name for p in (ROOT / "nnapp").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == set(LAYERS), packages ^ set(LAYERS)
    for package in packages:
        doc = ast.get_docstring(ast.parse((ROOT / "nnapp" / package / "__init__.py").read_text()))
        assert doc and "Imports" in doc, f"nnapp/{package}/__init__.py says what it owns and what it may import"


def test_nnapp_imports_in_no_circle_and_never_upward():
    graph = import_graph()
    assert not cycles(graph), cycles(graph)
    assert not upward(graph), upward(graph)


def test_the_import_check_finds_a_circle_and_an_upward_arrow():
    """The check above can fail: on a graph with a circle, and on a store module importing a sweep module."""
    graph = import_graph()
    looped = {**graph, "nnapp.engine.config": graph["nnapp.engine.config"] | {"nnapp.engine.limits"}}
    assert any({"nnapp.engine.config", "nnapp.engine.limits"} <= set(c) for c in cycles(looped)), cycles(looped)
    source = "from nnapp.sweep.spec import SweepSpec\n"
    lifted = {
        **graph,
        "nnapp.store.rows": graph["nnapp.store.rows"] | nnapp_imports(source, "nnapp.store") - {"nnapp.sweep.spec.SweepSpec"},
    }
    assert "nnapp.store.rows -> nnapp.sweep.spec" in upward(lifted)
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nnapp.cli.main import main\n"
    assert nnapp_imports(typed, "nnapp.store") == set()
    lazy = "def f():\n    from nnapp.cli import main\n"
    assert "nnapp.cli.main" in nnapp_imports(lazy, "nnapp.store")


def test_core_never_imports_streamlit():
    for path in CORE:
        assert not re.search(r"^\s*(import|from) streamlit", path.read_text(), re.M), path.name


def status_literals(source: str) -> list[str]:
    """Strings in `source` that spell a status or a claim state where a member belongs: every string constant
    but docstrings, dict keys, subscripts and the key of a .get() (a progress dict's "done" is a count, not a status)."""
    from nnapp.engine.states import ClaimState, Status

    words = {str(s) for s in (*Status, *ClaimState)}
    tree = ast.parse(source)
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            allowed.add(id(node.value))  # a docstring or a bare string
        elif isinstance(node, ast.Dict):
            allowed |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Subscript):
            allowed.add(id(node.slice))
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop") and node.args
        ):
            allowed.add(id(node.args[0]))
    return [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in words and id(node) not in allowed
    ]


def test_statuses_are_named_in_one_place():
    """Statuses and claim states are members of nnapp.engine.states' enums; no product code spells one."""
    found = {str(p.relative_to(ROOT)): hits for p in PRODUCT if p != STATES and (hits := status_literals(p.read_text()))}
    assert not found, found


def test_the_status_check_finds_a_literal():
    assert status_literals('if run.status == "done":\n    pass\n') == ["line 1: 'done'"]
    assert status_literals('store.set_status(key, "cancelled")\n') == ["line 1: 'cancelled'"]
    assert status_literals('x = {"done": 1}\nx["done"]\nx.get("done", 0)\n"""queued"""\n') == []


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
        "import nnapp.engine.train, nnapp.jobs.runs, nnapp.jobs.manager, nnapp.predict.inference, nnapp.tasks.run, nnapp.__main__, ui; "
        "assert torch.get_num_threads() == n, (n, torch.get_num_threads())"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_cli_lists_and_shows_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, nnapp.__main__, nnapp.engine.arch, nnapp.engine.checks, nnapp.store.store; "
        "assert not {'torch', 'optuna', 'ray'} & set(sys.modules)"
    )
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


def selection_fakes(source: str) -> list[str]:
    """Writes of a selection into a widget's state (`...session_state[KEY] = {"selection": ...}`, or dict(selection=...)):
    a test standing in for a click, a tick or a lasso instead of making it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        keys = []
        if isinstance(value, ast.Dict):
            keys = [k.value for k in value.keys if isinstance(k, ast.Constant)]
        elif isinstance(value, ast.Call) and ast.unparse(value.func) == "dict":
            keys = [k.arg for k in value.keywords]
        writes_state = any(isinstance(t, ast.Subscript) and "session_state" in ast.unparse(t.value) for t in targets)
        if writes_state and "selection" in keys:
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_test_writes_a_selection_in_place_of_the_gesture():
    """A click on a chart or a tick in a table is made in Chromium (tests/gestures.py), never written into the
    widget's state: such a test passes while the real click does nothing."""
    found = {p.name: hits for p in sorted((ROOT / "tests").glob("*.py")) if (hits := selection_fakes(p.read_text()))}
    assert not found, found


def test_the_selection_check_finds_a_planted_fake():
    planted = (
        'at.session_state["confusion"] = {"selection": {"points": [{"x": "3", "y": "5"}], "point_indices": []}}\n'
        'at.session_state["runs_table"] = dict(selection={"rows": [0], "columns": []})\n'
        'state: dict = {}\nat.session_state["ok"] = {"rows": [0]}\n'
    )
    assert [hit.split(":")[0] for hit in selection_fakes(planted)] == ["line 1", "line 2"]
