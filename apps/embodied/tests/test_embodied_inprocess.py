"""The in-process backend through the embodied CLI: the same numbers as on Ray (every
metric but timings), an exact resume, and a README command that never imports Ray."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import ray

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

# 4 updates of 2 envs x 32 steps, one env worker, one stage.
TINY = [
    "env.num_envs=2",
    "runner.horizon=32",
    "runner.pipeline_stages=1",
    "runner.checkpoint_every=1",
    "runner.progress=false",
    "runner.total_env_steps=256",
    "algo.epochs=2",
    "algo.minibatches=2",
]
VARIANTS = {
    # The preset: the policy runs inside the env worker.
    "policy_in_env": [],
    # A rollout worker serves the env worker over a loopback link, and the update overlaps
    # the next rollout: two ranks' threads at work at once, taking turns on the slot.
    "rollout_worker_overlapped": ["runner.policy_in_env=false", "runner.overlap_update=true"],
}


def _compared(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if not k.startswith(("time/", "throughput/"))}


def _train(run_dir: pathlib.Path, backend: str, extra: list[str], capsys) -> list[dict]:
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), *TINY, *extra]
    assert main([*args, f"cluster.backend={backend}"]) == 0
    assert f"(collocated, {backend})" in capsys.readouterr().out
    return read_metrics(run_dir / "metrics.jsonl")


def test_in_process_runs_equal_ray_runs_and_resume_exactly(tmp_path, capsys) -> None:
    assert not ray.is_initialized()
    local = {
        name: _train(tmp_path / name, "inprocess", extra, capsys)
        for name, extra in VARIANTS.items()
    }
    for rows in local.values():
        assert rows[0]["time/startup_ray_s"] < 0.5
        assert [int(r["step"]) for r in rows] == [64, 128, 192, 256]

    # Resumed in-process after update 2 (checkpoints hold the env and sampling RNG state):
    # updates 3-4 are those of the run that went on.
    full = tmp_path / "policy_in_env"
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for later in ("update_000003", "update_000004"):
        shutil.rmtree(cut / "checkpoints" / later)
    (cut / "checkpoints" / "latest").write_text("update_000002\n")
    lines = (cut / "metrics.jsonl").read_text().splitlines(keepends=True)
    (cut / "metrics.jsonl").write_text("".join(lines[:2]))
    assert main(["train", "--resume", str(cut)]) == 0
    resumed = read_metrics(cut / "metrics.jsonl")
    assert [_compared(r) for r in resumed[2:]] == [_compared(r) for r in local["policy_in_env"][2:]]

    # The same configs on Ray (one cluster for both runs): every metric but timings equal.
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING")
    try:
        for name, extra in VARIANTS.items():
            on_ray = _train(tmp_path / f"{name}-ray", "ray", extra, capsys)
            assert on_ray[0]["time/startup_ray_s"] >= 0.0
            want, got = [_compared(r) for r in on_ray], [_compared(r) for r in local[name]]
            assert "train/pg_loss" in want[0] and "env/return_mean" in want[0]
            assert got == want, name
    finally:
        ray.shutdown()


def test_readme_command_runs_in_process_without_importing_ray(tmp_path) -> None:
    # A fresh interpreter: this test process has Ray loaded.
    run_dir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import sys
        from rlinf.apps.embodied.cli import main
        code = main(["train", "--config", "cartpole", "--run-dir", {str(run_dir)!r},
                     "runner.total_env_steps=2048", "runner.progress=false"])
        print(code, "ray" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout
    first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["time/startup_ray_s"] < 0.5
    assert "(collocated, inprocess)" in done.stdout
