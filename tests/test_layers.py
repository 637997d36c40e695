"""The layer rules of DESIGN.md, checked on the source of every workspace member."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests._workspace import ROOT, Member, members

MEMBERS = members()
BY_MODULE = {m.module: m for m in MEMBERS}
HEAVY_ENGINES = ("vllm", "sglang", "megatron", "mani_skill")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _owner(module: str) -> Member | None:
    """The member that provides ``module`` (longest matching import prefix)."""
    for candidate in sorted(BY_MODULE, key=len, reverse=True):
        if module == candidate or module.startswith(candidate + "."):
            return BY_MODULE[candidate]
    return None


def _dependency_closure(member: Member) -> set[str]:
    by_dist = {m.dist: m for m in MEMBERS}
    seen: set[str] = set()
    todo = list(member.rlinf_deps)
    while todo:
        dist = todo.pop()
        if dist not in seen:
            seen.add(dist)
            todo.extend(by_dist[dist].rlinf_deps)
    return seen


def test_every_design_package_is_a_member():
    dists = {m.dist for m in MEMBERS}
    expected = {f"rlinf-{n}" for n in ("channel", "sched", "algos", "core", "envs", "models")}
    assert expected <= dists
    assert {m.module for m in MEMBERS if m.layer == 3} == {
        "rlinf.apps.math",
        "rlinf.apps.agentic",
        "rlinf.apps.embodied",
    }


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.dist)
def test_namespace_has_no_init(member: Member):
    # PEP 420: an rlinf/__init__.py in any member would hide every other member's modules.
    assert not (member.path / "src" / "rlinf" / "__init__.py").exists()
    assert not (member.path / "src" / "rlinf" / "apps" / "__init__.py").exists()
    assert (member.source_dir / "__init__.py").exists()


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.dist)
def test_imports_follow_the_layers(member: Member):
    allowed = _dependency_closure(member)
    violations = []
    for path in sorted(member.source_dir.rglob("*.py")):
        for module in _imported_modules(path):
            if module != "rlinf" and not module.startswith("rlinf."):
                continue
            owner = _owner(module)
            where = f"{path.relative_to(ROOT)} imports {module}"
            if owner is None:
                violations.append(f"{where}: no workspace member provides it")
            elif owner is member:
                continue
            elif owner.layer >= member.layer:
                violations.append(
                    f"{where}: layer {owner.layer} ({owner.dist}) is not below "
                    f"layer {member.layer} ({member.dist})"
                )
            elif owner.dist not in allowed:
                violations.append(f"{where}: {owner.dist} is not a declared dependency")
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.dist)
def test_heavy_engines_are_not_imported_by_the_package(member: Member):
    code = (
        f"import sys, {member.module}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_ENGINES!r})\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", (
        f"import {member.module} loaded {result.stdout.strip()}: heavy engines must be "
        "imported only when chosen"
    )
