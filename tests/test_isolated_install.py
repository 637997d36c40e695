"""Each member installs alone, with only its declared dependencies, and imports there.

The dependencies come from the lock (``uv export --package``), so the check sees exactly the
versions users get. In that venv every module of the member must import, every import
statement of its source must name the standard library, rlinf, an installed dependency or a
module of one of its optional extras, and its tests must collect. The tests themselves run
once, in the workspace suite.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

from tests._workspace import ROOT, Member, members

MEMBERS = members()


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the isolated environments; install it first")
    return uv


def _export(uv: str, args: list[str], out: Path) -> None:
    result = _run(
        [uv, "export", "--frozen", "--no-hashes", "--no-editable", *args, "-o", str(out)], cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: m.dist)
def test_member_installs_alone_and_passes_its_tests(member: Member, tmp_path: Path):
    uv = _uv()
    requirements = tmp_path / "requirements.txt"
    test_tools = tmp_path / "test-tools.txt"
    _export(uv, ["--package", member.dist, "--no-dev"], requirements)
    _export(uv, ["--only-group", "dev", "--no-emit-workspace"], test_tools)
    venv = tmp_path / "venv"
    assert _run([uv, "venv", "--quiet", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    install = _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-r",
            str(requirements),
            "-r",
            str(test_tools),
            # uv's cache keys a local build on pyproject.toml alone: without a refresh, a
            # module added since the last build would be missing from the installed wheel.
            *(arg for m in MEMBERS for arg in ("--refresh-package", m.dist)),
        ],
        cwd=ROOT,
        env=env,
    )
    assert install.returncode == 0, install.stderr

    # Every module of the member imports, and every import statement in its source (those
    # inside functions too, which tests may never reach) names the standard library, rlinf,
    # a declared dependency, or a module that only an optional extra provides.
    probe = _run(
        [str(python), str(ROOT / "tests" / "_import_probe.py"), member.module, member.source_dir],
        cwd=tmp_path,
        env=env,
    )
    assert probe.returncode == 0, probe.stderr[-6000:]
    found = json.loads(probe.stdout)
    by_extra = _extra_only_imports(uv, member)
    broken = [
        f"{module}: {error}"
        for module, missing, error in found["modules"]
        if missing not in by_extra
    ]
    undeclared = [
        f"{path}:{line}: {name}" for name, path, line in found["names"] if name not in by_extra
    ]
    assert not broken, f"{member.dist} alone cannot import:\n" + "\n".join(broken)
    assert not undeclared, f"{member.dist} imports undeclared modules:\n" + "\n".join(undeclared)
    if not member.test_files:
        return
    # Its test modules import there too (the test tools come from the dev group). Running
    # them again would repeat the workspace suite: what an isolated venv can reveal is an
    # import, and the two checks above and the collection find those.
    tests = _run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "--collect-only",
            "-m",
            "",
            "-p",
            "no:cacheprovider",
            str((member.path / "tests").relative_to(ROOT)),
        ],
        cwd=ROOT,
        env=env,
        timeout=900,
    )
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]


def _requirement_names(uv: str, args: list[str], out: Path) -> set[str]:
    _export(uv, args, out)
    names = set()
    for line in out.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-", ".")) and "==" in line:
            names.add(_normalize(line.split("==", 1)[0].split("[", 1)[0]))
    return names


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _extra_only_imports(uv: str, member: Member) -> set[str]:
    """Top-level import names provided only by the member's optional extras (their
    distributions, installed in the workspace, mapped to the modules they provide)."""
    # One export per extra: `--all-extras` is refused once two extras are declared
    # conflicting (rlinf-models' vllm and sglang pin different torch versions).
    extras = tomllib.loads((member.path / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = _requirement_names(
            uv, ["--package", member.dist, "--no-dev"], Path(tmp) / "base.txt"
        )
        extra: set[str] = set()
        for name in extras:
            extra |= _requirement_names(
                uv,
                ["--package", member.dist, "--no-dev", "--extra", name],
                Path(tmp) / f"{name}.txt",
            )
    extra -= base
    installed = {
        name
        for name, dists in importlib.metadata.packages_distributions().items()
        if any(_normalize(d) in extra for d in dists)
    }
    # An extra the workspace does not install (e.g. wandb): its import name is the
    # distribution's own in the usual case.
    return installed | {d.replace("-", "_") for d in extra}
