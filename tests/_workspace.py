"""Facts about the workspace members, read from their pyproject files (for the checks)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Member", "members"]

ROOT = Path(__file__).resolve().parents[1]

# Layers of ../shared/DESIGN.md: a member may import only members of a lower layer.
_LAYERS = {
    "rlinf-channel": 0,
    "rlinf-sched": 0,
    "rlinf-algos": 0,
    "rlinf-core": 1,
    "rlinf-envs": 2,
    "rlinf-models": 2,
}
_APP_LAYER = 3


@dataclass(frozen=True)
class Member:
    """One workspace member.

    Attributes:
        dist: distribution name, e.g. ``rlinf-core``.
        path: its folder.
        module: its import name, e.g. ``rlinf.core`` or ``rlinf.apps.math``.
        layer: its layer in DESIGN.md.
        rlinf_deps: the workspace members it declares as dependencies.
    """

    dist: str
    path: Path
    module: str
    layer: int
    rlinf_deps: frozenset[str]

    @property
    def source_dir(self) -> Path:
        return self.path / "src" / Path(*self.module.split("."))

    @property
    def test_files(self) -> list[Path]:
        return sorted((self.path / "tests").glob("test_*.py"))


def members() -> list[Member]:
    found = []
    for pyproject in sorted(ROOT.glob("*/*/pyproject.toml")):
        if pyproject.parent.parent.name not in ("packages", "apps"):
            continue
        project = tomllib.loads(pyproject.read_text())["project"]
        dist = project["name"]
        deps = {re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0] for d in project["dependencies"]}
        is_app = pyproject.parent.parent.name == "apps"
        module = (
            f"rlinf.apps.{pyproject.parent.name}" if is_app else "rlinf." + dist.split("-", 1)[1]
        )
        found.append(
            Member(
                dist=dist,
                path=pyproject.parent,
                module=module,
                layer=_APP_LAYER if is_app else _LAYERS[dist],
                rlinf_deps=frozenset(d for d in deps if d.startswith("rlinf-")),
            )
        )
    return found
