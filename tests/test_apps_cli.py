"""What every app's CLI promises alike: importing it loads neither Ray nor torch (Ray's
environment is set first), and an occupied ``--run-dir`` is refused with exit code 2
before anything is loaded or started."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

APPS = {"math": "grpo", "agentic": "search", "embodied": "cartpole"}


@pytest.mark.parametrize("app", sorted(APPS))
def test_cli_module_imports_neither_ray_nor_torch(app):
    code = (
        f"import sys, rlinf.apps.{app}.cli; "
        "assert 'ray' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("app", "preset"), sorted(APPS.items()))
def test_refuses_to_overwrite_a_run(app, preset, tmp_path, capsys):
    main = importlib.import_module(f"rlinf.apps.{app}.cli").main
    occupied = tmp_path / "x"
    occupied.mkdir()
    (occupied / "file").write_text("")
    assert main(["train", "--config", preset, "--run-dir", str(occupied)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"rlinf-{app}: error: run directory {occupied} is not empty (use --resume to continue it)\n"
    )
