"""The shape of the code: one application layer, the CLI an entry point nobody imports, no
import cycles, and one row in the action table per workflow update."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.actions import ACTIONS, BY_NAME
from workflows.pupil_journey import PupilJourney

ROOT = Path(__file__).resolve().parent.parent
#: Top-level packages and modules of the project (what the wheel installs, plus scripts/).
PACKAGES = (
    "domain",
    "workflows",
    "activities",
    "records",
    "audit",
    "archive",
    "reform",
    "api",
    "access",
    "crypto",
    "bench",
    "service",
    "cli",
    "web",
)
MODULES = ("starter", "worker", "devserver", "settings", "server")
#: The CLI's own tests may drive it in-process.
CLI_TESTS = {
    "tests/test_cli.py",
    "tests/test_docs.py",
    "tests/audit/test_audit.py",  # the replay command
    "tests/faults/test_hostile_input.py",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    files = {m: ROOT / f"{m}.py" for m in MODULES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                files[_module_name(path)] = path
    return files


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules a file imports anywhere in it (function-level imports included)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    files = _project_files()
    known = set(files)
    return {name: _imports(path, known) - {name} for name, path in files.items()}


def test_nothing_but_the_cli_and_its_tests_imports_the_cli() -> None:
    offenders = sorted(name for name, deps in _graph().items() if "starter" in deps)
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if rel in CLI_TESTS:
            continue
        if "starter" in _imports(path, {"starter"}):
            offenders.append(rel)
    assert offenders == []


def test_the_project_has_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert [" -> ".join(c) for c in cycles] == []


def test_the_api_and_the_web_pages_never_import_each_other() -> None:
    """Two adapters over one application layer: only the composition root (server.py)
    puts them side by side."""
    graph = _graph()
    crossing = sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        for dep in deps
        if (name.startswith("api") and dep.startswith("web"))
        or (name.startswith("web") and dep.startswith("api"))
    )
    assert crossing == []
    assert "web.app" in graph["server"] and "api.app" in graph["server"]


def test_the_graph_sees_imports_in_both_forms(tmp_path: Path) -> None:
    """The checks above can fail: both spellings of an import of the CLI are found."""
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text("import starter\n")
    two.write_text("def f():\n    from starter import cli\n")
    assert _imports(one, {"starter"}) == {"starter"}
    assert _imports(two, {"starter"}) == {"starter"}


def _updates() -> set[str]:
    """The workflow's updates, as the SDK registers them (each handler carries its definition)."""
    from temporalio.workflow import _UpdateDefinition

    return {
        name
        for name, value in vars(PupilJourney).items()
        if isinstance(getattr(value, "_defn", None), _UpdateDefinition)
    }


def test_every_workflow_update_has_one_row_in_the_action_table_and_back() -> None:
    updates = _updates()
    assert len(updates) >= 18  # the finder itself works
    rows = [a.update_name for a in ACTIONS]
    assert sorted(rows) == sorted(set(rows)), "an update has two rows"
    assert set(rows) == updates


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_each_row_names_its_update_by_reference_and_takes_its_input_type(action: object) -> None:
    from typing import get_type_hints

    row = BY_NAME[action.name]  # type: ignore[attr-defined]
    handler = getattr(PupilJourney, row.update_name)
    assert row.update is handler
    assert get_type_hints(handler)["cmd"] is row.input
