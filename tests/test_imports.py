"""The import graph of the package and the dashboard, read from their source: no circle, every import at the
top of its module but for the heavy optional dependencies, and each of those imported in one module."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("sgpo", "dashboard")
OPTIONAL = {"trl", "vllm", "streamlit", "playwright"}  # heavy and optional: imported where they are first used
LATE_ON_PURPOSE = {  # (module, import): why it cannot sit at the top
    ("sgpo.tasks.verify_worker", "math_verify"): "the worker imports it after its memory limit and stdout guard",
}
FRAMEWORK = {"dashboard": "streamlit"}  # the dashboard is a Streamlit app: every page imports it


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(module: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, at the top of the module?, line) for every import of `module`, the ones under
    `if TYPE_CHECKING:` left out (they never run). `from package import name` names the submodule when
    `name` is one."""
    found: list[tuple[str, bool, int]] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]

    def walk(body: list[ast.stmt], top: bool) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.extend((name, top, node.lineno) for name in targets(node))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                walk(node.body, False)  # type: ignore[arg-type]
            else:
                for name in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, name, None)
                    if isinstance(inner, list):
                        walk(inner, top)

    walk(ast.parse(path.read_text()).body, True)
    return found


GRAPH = {module: imports(module, path) for module, path in MODULES.items()}


def test_the_walk_sees_the_package_and_its_edges():
    assert len(MODULES) > 90 and "sgpo.train.loop" in MODULES and "dashboard.app" in MODULES
    assert ("sgpo.generate", True) in {(name, top) for name, top, _ in GRAPH["sgpo.model"]}


def test_no_import_circle_in_the_package_or_the_dashboard():
    graph = {m: {name for name, top, _ in edges if top and name in MODULES} for m, edges in GRAPH.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")
    assert set(order) == set(MODULES)


def test_a_circle_would_be_found():
    with pytest.raises(CycleError):
        list(TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).static_order())


def test_imports_sit_at_the_top_but_for_the_heavy_optional_dependencies():
    late = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {name}"
        for m, edges in GRAPH.items()
        for name, top, line in edges
        if not top and name.split(".")[0] not in OPTIONAL and (m, name) not in LATE_ON_PURPOSE
    ]
    assert late == [], "imports inside functions (move them to the top):\n" + "\n".join(late)


def test_each_optional_dependency_is_imported_in_one_module():
    users: dict[str, set[str]] = {}
    for m, edges in GRAPH.items():
        for name, _, _ in edges:
            root = name.split(".")[0]
            if root in OPTIONAL and FRAMEWORK.get(m.split(".")[0]) != root:
                users.setdefault(root, set()).add(m)
    assert {root: sorted(ms) for root, ms in users.items() if len(ms) > 1} == {}
    assert users.get("trl") == {"sgpo.train.trl_config"} and users.get("vllm") == {"sgpo.generate.vllm"}
