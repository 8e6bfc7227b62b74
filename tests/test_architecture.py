"""The package layers of docs/architecture.md hold: every import points down, never sideways.

Every module of ``src/diemcau`` is parsed (nothing is imported), each import is
mapped to the subpackage or top-level module it names, and the edges are checked:

- a unit may import only units of a lower layer (or itself);
- the services (presence, meetings, command, media, recording) are peers: none imports
  another; they talk through ports the composition root (``wiring.py``) plugs in;
- the domain base is ordered (directory > accounts > audit), so it has no cycle;
- no two units import each other, directly or around a loop;
- only the tooling layer reaches modules by name (``importlib.import_module``).

A package's command-line module (``cli.py``, ``*_cli.py``) is an entry point of
the tooling layer, whatever package it sits in: ``diemcau.cli`` registers it, it
may use any package below tooling (``accounts/cli.py`` checks the directory is
loaded), and nothing but another command-line module may import it.

Imports inside functions and under ``TYPE_CHECKING`` count too: they are
dependencies all the same. A new top-level module or subpackage must be given a
layer here (and in docs/architecture.md) before it can be used.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import diemcau

SRC = Path(diemcau.__file__).parent

# Rank of every top-level unit of the package: a unit imports only lower ranks.
# Units of equal rank are peers and never import each other, except in the
# foundation, whose single modules may use each other (no cycle allowed).
CLI_RANK = 62
TOOLING = {"cli": CLI_RANK, "demo": 61, "lab": 60, "sim": 59}
API = {"api": 50, "web": 50}
# The standby role starts the runtime once this server holds the leader lease.
COMPOSITION = {"wiring": 41, "standby": 41, "runtime": 40}
# The deployment inventory describes media nodes; the composition root reads it.
DEPLOYMENT = {"deploy": 35}
SERVICES = {
    "presence": 30,
    "meetings": 30,
    "command": 30,
    "media": 30,
    "recording": 30,
    "inspection": 30,
}
DOMAIN_BASE = {"directory": 22, "accounts": 21, "audit": 20}
FOUNDATION = {
    name: 10
    for name in (
        "__init__",
        "actors",
        "alerting",
        "config",
        "errors",
        "cliargs",
        "instance_keys",
        "limits",
        "logs",
        "processes",
        "ratelimit",
        "records",
        "security",
        "spreadsheet",
        "store",
        "tasks",
        "text",
        "tls",
    )
}
RANK: dict[str, int] = {
    **TOOLING,
    **API,
    **COMPOSITION,
    **DEPLOYMENT,
    **SERVICES,
    **DOMAIN_BASE,
    **FOUNDATION,
}
FOUNDATION_RANK = 10

# Known violations in packages other branches of issue 10 are still reshaping:
# (importer, imported) -> what removes it. Empty it when the last one is gone.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str  # the importing unit
    target: str  # the imported unit
    where: str  # file:line of the import


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_cli(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.count(".") >= 2 and (last == "cli" or last.endswith("_cli"))


def _unit(module: str) -> str | None:
    """The top-level unit of a ``diemcau...`` module name (None outside the package).

    The command-line module of a package below tooling is a unit of its own,
    ``<package>.cli``.
    """
    parts = module.split(".")
    if parts[0] != "diemcau":
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    if _is_cli(module) and name not in TOOLING:
        return f"{name}.cli"
    if (SRC / name).is_dir() or (SRC / f"{name}.py").is_file():
        return name
    return "__init__"  # ``from diemcau import __version__``


def _imported(path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    if base == "diemcau":
        yield from (f"diemcau.{alias.name}" for alias in node.names)
    else:
        yield base


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def scan() -> tuple[list[Edge], list[str], list[str]]:
    """(edges between units, units without a layer, name-based imports outside tooling)."""
    edges: list[Edge] = []
    unknown: set[str] = set()
    by_name: list[str] = []
    for path in _modules():
        source = _unit(_module_name(path)) or "__init__"
        if _rank(source) is None:
            unknown.add(source)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for module in _imported(path, node):
                    target = _unit(module)
                    if target is None or target == source:
                        continue
                    if _rank(target) is None:
                        unknown.add(target)
                    edges.append(Edge(source, target, f"{where}:{node.lineno}"))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and _rank(source) not in (*TOOLING.values(), CLI_RANK)
            ):
                by_name.append(f"{where}:{node.lineno}")
    return edges, sorted(unknown), by_name


def _rank(unit: str) -> int | None:
    return CLI_RANK if unit.endswith(".cli") else RANK.get(unit)


def _violation(edge: Edge) -> str | None:
    source, target = _rank(edge.source), _rank(edge.target)
    assert source is not None and target is not None
    if target > source:
        return f"{edge.where}: {edge.source} imports {edge.target}, a layer above it"
    if target == source and source not in (FOUNDATION_RANK, CLI_RANK):
        return f"{edge.where}: {edge.source} imports its peer {edge.target}"
    return None


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.fixture(scope="module")
def scanned() -> tuple[list[Edge], list[str], list[str]]:
    return scan()


def test_every_unit_has_a_layer(scanned: tuple[list[Edge], list[str], list[str]]) -> None:
    _, unknown, _ = scanned
    assert unknown == [], f"give these a layer in tests/test_architecture.py: {unknown}"


def test_imports_point_down_and_services_do_not_import_each_other(
    scanned: tuple[list[Edge], list[str], list[str]],
) -> None:
    edges, unknown, _ = scanned
    known = [e for e in edges if _rank(e.source) is not None and _rank(e.target) is not None]
    found = [
        (e, problem)
        for e in known
        if (problem := _violation(e)) is not None and (e.source, e.target) not in ALLOWED
    ]
    assert [problem for _, problem in found] == []
    # An allowance nobody needs any more is removed, so the list only shrinks.
    used = {(e.source, e.target) for e in known if _violation(e) is not None}
    assert sorted(set(ALLOWED) - used) == []


def test_no_cycle_between_units(scanned: tuple[list[Edge], list[str], list[str]]) -> None:
    edges, _, _ = scanned
    assert _cycles(edges) == []


def test_only_tooling_reaches_modules_by_name(
    scanned: tuple[list[Edge], list[str], list[str]],
) -> None:
    _, _, by_name = scanned
    assert by_name == []


def test_the_checks_catch_what_they_are_for() -> None:
    """The rules fail on a peer import, an upward import and a loop (not only pass)."""
    peer = Edge("meetings", "media", "meetings/x.py:1")
    upward = Edge("store", "api", "store/x.py:1")
    down = Edge("command", "audit", "command/x.py:1")
    base = Edge("directory", "accounts", "directory/x.py:1")
    backwards = Edge("audit", "accounts", "audit/x.py:1")
    assert _violation(peer) is not None and "peer" in (_violation(peer) or "")
    assert "above" in (_violation(upward) or "")
    assert _violation(down) is None and _violation(base) is None
    assert _violation(backwards) is not None
    # A command-line module is tooling: it may use the directory; a service may not use it.
    assert _unit("diemcau.accounts.cli") == "accounts.cli"
    assert _unit("diemcau.directory.provision_cli") == "directory.cli"
    assert _unit("diemcau.demo.cli") == "demo"  # already tooling
    assert _violation(Edge("accounts.cli", "directory", "accounts/cli.py:1")) is None
    assert _violation(Edge("accounts", "accounts.cli", "accounts/x.py:1")) is not None
    loop = [Edge("a", "b", "a:1"), Edge("b", "c", "b:1"), Edge("c", "a", "c:1")]
    assert _cycles(loop) == [["a", "b", "c"]]
    assert _cycles([Edge("a", "b", "a:1")]) == []
    # The scan itself sees real edges (the API is built on the runtime).
    edges, _, _ = scan()
    assert any(e.source == "api" and e.target == "runtime" for e in edges)
    assert any(e.source == "wiring" and e.target == "presence" for e in edges)
