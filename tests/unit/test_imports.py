"""The house's rules on imports, read from the source of every module of graph, db and lending.

- Each part may use only the parts below it (``MAY_USE``): ``graph`` uses ``lending`` and
  ``db``; ``lending.services`` uses ``db`` and the pure rules; ``db`` uses the pure rules; the
  pure rules use nothing of ours but each other. Nothing uses ``graph`` (the tests and the
  benchmarks, not read here, may). Inside ``graph``, its rooms keep their own order.
- No circle of imports runs through modules of different packages (a circle inside one
  package, such as graph.types' lazy links, is that package's own business). Imports made only
  for type checking count: they tie modules together all the same.
- No import inside a function, but of an optional dependency (``OPTIONAL``), and the command
  line's heavy parts (``WHEN_NEEDED``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graph", "db", "lending")

# Which parts each part may import (itself always). A part is the longest prefix listed here.
MAY_USE: dict[str, set[str]] = {
    # the pure rules: nothing of ours but each other
    "lending": set(),
    "lending.services": {"lending", "db"},
    "db": {"lending"},
    # graph: its own rooms, in order, over lending and db
    "graph.observability": {"db"},
    "graph": {
        "graph.types",
        "graph.compiled",
        "graph.observability",
        "lending",
        "lending.services",
        "db",
    },
    "graph.types": {"graph", "graph.compiled", "lending", "db"},
    "graph.compiled": {
        "graph",
        "graph.types",
        "graph.observability",
        "graph.server",
        "lending",
        "db",
    },
    "graph.agents": {"graph", "graph.observability", "graph.server", "lending", "db"},
    "graph.server": {
        "graph",
        "graph.types",
        "graph.compiled",
        "graph.observability",
        "graph.agents",
        "lending",
        "lending.services",
        "db",
    },
    # the `lending` command uses every part
    "graph.cli": {
        "graph",
        "graph.compiled",
        "graph.observability",
        "graph.agents",
        "graph.server",
        "lending",
        "lending.services",
        "db",
    },
}
OPTIONAL = {"opentelemetry", "pgserver", "psutil"}  # imported only where they are needed
# The command line imports the server, the schema and the tools in the commands that use them:
# a key or an audit command starts in a third of the time (graph/cli.py says how much).
WHEN_NEEDED = {"graph.cli": {"graph.server.app", "graph.schema", "graph.agents"}}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (the deepest one of ours the name reaches)
    line: int
    in_function: bool


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(found: dict[str, Path]) -> Iterator[Import]:
    for source, path in found.items():
        tree = ast.parse(path.read_text(), str(path))
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = name
                while target and target not in found:
                    target = target.rpartition(".")[0]
                if target.split(".")[0] in PACKAGES and target != source:
                    yield Import(source, target, node.lineno, id(node) in inside)
                elif id(node) in inside and name.split(".")[0] not in PACKAGES:
                    yield Import(source, name, node.lineno, True)


def part(module: str) -> str:
    """The part of the house a module belongs to (the longest prefix MAY_USE lists)."""
    pieces = module.split(".")
    for length in range(len(pieces), 0, -1):
        prefix = ".".join(pieces[:length])
        if prefix in MAY_USE:
            return prefix
    raise AssertionError(f"{module} belongs to no part listed in MAY_USE")


def package(module: str, found: dict[str, Path]) -> str:
    return module if found[module].name == "__init__.py" else module.rpartition(".")[0]


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_every_part_imports_only_the_parts_below_it() -> None:
    found = modules()
    wrong = sorted(
        f"{i.source}:{i.line} imports {i.target} ({part(i.source)} may not use {part(i.target)})"
        for i in imports(found)
        if i.target in found
        and part(i.target) != part(i.source)
        and part(i.target) not in MAY_USE[part(i.source)]
    )
    assert wrong == []


def test_no_circle_of_imports_crosses_a_package() -> None:
    found = modules()
    edges: dict[str, set[str]] = {}
    for i in imports(found):
        if i.target in found:
            edges.setdefault(i.source, set()).add(i.target)
    crossing = [
        sorted(group) for group in circles(edges) if len({package(m, found) for m in group}) > 1
    ]
    assert crossing == []


def test_imports_stand_at_the_top_of_their_module() -> None:
    found = modules()
    inside = sorted(
        f"{i.source}:{i.line} imports {i.target} inside a function"
        for i in imports(found)
        if i.in_function
        and i.target.split(".")[0] not in OPTIONAL
        and not any(
            i.target == lazy or i.target.startswith(lazy + ".")
            for lazy in WHEN_NEEDED.get(i.source, ())
        )
    )
    assert inside == []


def test_the_rules_see_every_module_and_the_circles_they_look_for() -> None:
    # the checks above read what they should: every module, and a circle where there is one
    found = modules()
    assert {"graph.schema", "graph.compiled.executor", "db.reads.sql", "lending.money"} <= set(
        found
    )
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert part("graph.types.loans") == "graph.types"
    assert part("lending.services.demo") == "lending.services"
