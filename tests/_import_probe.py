"""Run by an isolated venv's Python: what of a member cannot be imported there.

    python _import_probe.py <package> <source dir>

Prints one JSON object:

- ``modules``: ``[[module, missing top-level name or null, error]]`` for every submodule of
  ``<package>`` whose import failed;
- ``names``: ``[[name, file, line]]`` for every absolute ``import`` statement anywhere in the
  source (function bodies included, ``if TYPE_CHECKING:`` blocks excluded) whose top-level
  module is neither in the standard library nor ``rlinf`` nor found in this venv.

Only the standard library is used: the probe runs where only the member is installed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import sys
from pathlib import Path


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            found.extend(name for child in node.orelse for name in _imports(child))
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        found.extend(_imports(node))
    return found


def _unfound_names(source: Path) -> list[list[object]]:
    known = set(sys.stdlib_module_names) | {"rlinf", "__future__"}
    unfound = []
    for path in sorted(source.rglob("*.py")):
        for name, line in _imports(ast.parse(path.read_text(), filename=str(path))):
            if name not in known and importlib.util.find_spec(name) is None:
                unfound.append([name, str(path), line])
    return unfound


def _failed_modules(package: str) -> list[list[object]]:
    root = importlib.import_module(package)
    failed = []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        try:
            importlib.import_module(info.name)
        except ImportError as e:
            missing = e.name.split(".")[0] if e.name else None
            failed.append([info.name, missing, f"{type(e).__name__}: {e}"])
    return failed


def main() -> None:
    package, source = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"modules": _failed_modules(package), "names": _unfound_names(source)}))


if __name__ == "__main__":
    main()
