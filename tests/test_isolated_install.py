"""Each member installs alone, with only its declared dependencies, and passes its tests there.

The dependencies come from the lock (``uv export --package``), so the check sees exactly the
versions users get, and a missing declaration shows up as an ImportError in that venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
# A member's quick tests run again in its own venv: more than the suite's 10-minute default
# on a loaded 2-core machine (rlinf-models, the apps).
@pytest.mark.timeout(1800)
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

    imported = _run([str(python), "-c", f"import {member.module}"], cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    if not member.test_files:
        return
    # Run from the workspace root so the root pytest config and conftest apply, but import
    # the member from the venv: its src/ is not on sys.path there. Slow tests (learning
    # curves) exercise no import the quick ones miss and already run in the workspace suite.
    tests = _run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            str((member.path / "tests").relative_to(ROOT)),
        ],
        cwd=ROOT,
        env=env,
        timeout=1800,
    )
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
