"""What every app's CLI promises alike: importing it loads neither Ray nor torch (Ray's
environment is set first), and an occupied ``--run-dir`` is refused with exit code 2
before anything is loaded or started."""

from __future__ import annotations

import importlib
import socket
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


@pytest.mark.parametrize(("app", "preset"), sorted(APPS.items()))
def test_address_where_no_cluster_answers_is_a_config_error(app, preset, tmp_path, capsys):
    main = importlib.import_module(f"rlinf.apps.{app}.cli").main
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    run_dir = tmp_path / "run"
    assert main(["train", "--config", preset, "--run-dir", str(run_dir), "--address", closed]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"rlinf-{app}: error: cluster.address: no Ray cluster answers at {closed}"
    )
    assert not run_dir.exists()
