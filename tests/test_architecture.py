"""The layout holds: layers are reusable components (no config model, no tooling inside), the
program never imports the offline tooling, and no module imports itself back through any chain."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

from tests.pins import ROOT

PACKAGES = ("components", "stacks", "tooling")


def project_modules() -> dict[str, Path]:
    modules = {"__main__": ROOT / "__main__.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            modules[f"{package}.{path.stem}" if path.stem != "__init__" else package] = path
    return modules


def imports() -> dict[str, set[str]]:
    """module → the project modules it imports (at any place in the file)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            found.update(t for t in targets if t in modules and t != name)
        graph[name] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> Optional[list[str]]:
    """A cycle of any length in a directed graph, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> Optional[list[str]]:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_cycles_of_any_length():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}}) == ["a", "b", "c", "d", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    assert find_cycle(imports()) is None


def test_components_know_nothing_of_the_config_model_or_the_tooling():
    for module, targets in imports().items():
        if module.startswith("components"):
            assert not {t for t in targets if t.startswith(("stacks", "tooling"))}, module


def test_the_program_never_imports_the_tooling():
    for module, targets in imports().items():
        if not module.startswith("tooling"):
            assert not {t for t in targets if t.startswith("tooling")}, module


def test_only_the_composition_and_its_facts_read_the_config_model():
    readers = {m for m, targets in imports().items() if "stacks.config" in targets and not m.startswith("tooling")}
    assert readers <= {"stacks.compose", "stacks.facts", "stacks.problems", "__main__"}, readers
