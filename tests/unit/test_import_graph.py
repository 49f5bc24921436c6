"""The direction of imports between our packages, read from the source (nothing is imported).

Every module of the shipped packages is parsed with :mod:`ast`; each ``import``
and ``from ... import`` anywhere in it (also inside functions: a lazy import is
still a dependency) becomes an edge to the module it names. Then:

* no cycles between modules (imports under ``if TYPE_CHECKING:`` do not run
  and are left out of this check only);
* ``mibs`` imports nothing of ours; ``uploader`` nothing of ``agent``,
  ``collectors``, ``mibs`` or ``backend``; ``backend`` nothing of ``agent`` or
  ``collectors``; ``collectors`` nothing of ``agent``, ``uploader`` or
  ``backend``; and no package imports ``agent`` (the composition root). The one
  exception is ``fleet_errors``, the root of the error tree: it imports only the
  standard library, so any package may import it;
* ``agent.daemon`` imports no command module, and ``agent.cli`` imports the
  command modules only by name, when a command runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "mibs", "collectors", "uploader", "backend", "fleet_errors")
#: ``fleet_errors`` is the error tree's root: standard library only, so every package may
#: import it without depending on another package (it imports nothing of ours).
ALLOWED: dict[str, frozenset[str]] = {
    "fleet_errors": frozenset(),
    "mibs": frozenset({"fleet_errors"}),
    "uploader": frozenset({"fleet_errors"}),
    "collectors": frozenset({"mibs", "fleet_errors"}),
    "backend": frozenset({"mibs", "uploader", "fleet_errors"}),
    "agent": frozenset({"mibs", "collectors", "uploader", "backend", "fleet_errors"}),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """Our module ``name`` names (a package's ``__init__`` when it is a package), else None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, runtime: bool) -> Iterator[Edge]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, False)
            for child in node.orelse:
                yield from visit(child, runtime)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import name``: the submodule pkg.name when there is one, else pkg
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield Edge(module, target, getattr(node, "lineno", 0), runtime)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, runtime)

    yield from visit(tree, True)


EDGES = [edge for module, path in MODULES.items() for edge in _imports(module, path)]


def _top(name: str) -> str:
    return name.partition(".")[0]


def test_the_error_root_depends_on_nothing_of_ours() -> None:
    assert [str(e) for e in EDGES if e.source == "fleet_errors"] == []
    tree = ast.parse((ROOT / "fleet_errors" / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        (node.module or "").partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections", "contextlib", "pathlib"}


def test_the_graph_is_read_from_every_module() -> None:
    assert {"agent.cli", "agent.daemon", "mibs.decode", "uploader.queue"} <= set(MODULES)
    assert any(e.source == "agent.daemon" and e.target == "agent.collect" for e in EDGES)
    assert any(e.source == "backend.ingest" and _top(e.target) == "uploader" for e in EDGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may(package: str) -> None:
    wrong = [
        str(edge)
        for edge in EDGES
        if _top(edge.source) == package
        and _top(edge.target) != package
        and _top(edge.target) not in ALLOWED[package]
    ]
    assert wrong == [], f"{package} may import only {sorted(ALLOWED[package])}"


def test_nothing_imports_agent() -> None:
    assert [str(e) for e in EDGES if _top(e.target) == "agent" and _top(e.source) != "agent"] == []


def test_the_daemon_imports_no_command_module() -> None:
    daemon = [e for e in EDGES if e.source == "agent.daemon"]
    assert daemon, "agent.daemon has imports"
    assert [str(e) for e in daemon if e.target.startswith("agent.commands")] == []


def test_the_cli_imports_command_modules_only_when_a_command_runs() -> None:
    assert [str(e) for e in EDGES if e.source == "agent.cli" and "commands" in e.target] == []


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), runtime imports."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in EDGES:
        if edge.runtime:
            graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    EDGES.append(Edge("mibs.models", "mibs.decode", 1, True))
    try:
        assert any({"mibs.models", "mibs.decode"} <= set(c) for c in _cycles())
    finally:
        EDGES.pop()
