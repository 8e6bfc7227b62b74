"""Whatever the installed package imports is declared in its runtime dependencies.

Every ``diemcau`` module is imported in a fresh interpreter that records, for each
import statement a ``diemcau`` module runs, the top-level name it imports; imports
inside functions (the demo's child, lazy imports) are read from the source. Each
third-party name must belong to a distribution listed in ``[project].dependencies``
(read from the installed package's metadata), not only in the ``dev`` extra: a site
installs the package without the extras.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import diemcau

PACKAGE_DIR = Path(diemcau.__file__).parent
# Modules that do something when imported: the demo child's entry point (it runs a
# child) and Alembic's environment script (it needs a running migration).
NOT_IMPORTED = {"diemcau.demo.__main__", "diemcau.store.migrations.env"}

_RECORDER = r"""
import builtins, importlib, json, pkgutil, sys
import diemcau

seen, failed, imported = {}, {}, []
real_import = builtins.__import__

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if level == 0 and importer.startswith("diemcau"):
        seen.setdefault(importer, set()).add(name.split(".")[0])
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = recording_import
skip = set(json.loads(sys.argv[1]))
names = [m.name for m in pkgutil.walk_packages(diemcau.__path__, "diemcau.")]
for name in sorted(names):
    if name in skip:
        continue
    try:
        importlib.import_module(name)
        imported.append(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({"seen": {k: sorted(v) for k, v in seen.items()},
                  "failed": failed, "imported": imported, "all": names}))
"""


def _declared() -> set[str]:
    """Distribution names in the installed package's runtime dependencies (no extras)."""
    names: set[str] = set()
    for line in importlib.metadata.requires("diemcau") or []:
        req = Requirement(line)
        if req.marker is None or "extra" not in str(req.marker):
            names.add(canonicalize_name(req.name))
    return names


def _function_level_imports() -> dict[str, set[str]]:
    """Module -> top-level names imported anywhere in its source (not for type checking)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = {node.module.split(".")[0]}
            else:
                continue
            found.setdefault(module, set()).update(tops)
    return found


def undeclared(
    imports: Mapping[str, Iterable[str]],
    declared: set[str],
    distributions: Mapping[str, list[str]],
) -> list[str]:
    """``module: name (distribution)`` for every third-party import not declared."""
    problems = []
    for module, names in sorted(imports.items()):
        for name in sorted(set(names)):
            if name in sys.stdlib_module_names or name in ("diemcau", "__future__"):
                continue
            dists = [canonicalize_name(d) for d in distributions.get(name, [])]
            if not dists:
                problems.append(f"{module}: {name} (no installed distribution provides it)")
            elif not declared.intersection(dists):
                problems.append(f"{module}: {name} ({', '.join(dists)} is not declared)")
    return problems


def test_every_import_of_the_package_is_a_declared_runtime_dependency() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _RECORDER, json.dumps(sorted(NOT_IMPORTED))],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert set(report["imported"]) == set(report["all"]) - NOT_IMPORTED
    assert len(report["imported"]) > 100  # every subpackage was walked
    imports: dict[str, set[str]] = {k: set(v) for k, v in report["seen"].items()}
    for module, names in _function_level_imports().items():
        imports.setdefault(module, set()).update(names)
    distributions = importlib.metadata.packages_distributions()
    assert undeclared(imports, _declared(), distributions) == []


def test_the_check_names_an_undeclared_or_unknown_import() -> None:
    # Bad input: a module importing a test-only tool, and a name nothing provides.
    distributions = importlib.metadata.packages_distributions()
    got = undeclared(
        {"diemcau.x": {"pytest", "json", "sqlalchemy"}, "diemcau.y": {"no_such_module_xyz"}},
        _declared(),
        distributions,
    )
    assert got == [
        "diemcau.x: pytest (pytest is not declared)",
        "diemcau.y: no_such_module_xyz (no installed distribution provides it)",
    ]
    assert "numpy" in _declared()  # the demo's media bots draw frames with it at runtime
