"""Off-policy runs end to end (Ray): checkpoint with the replay buffer, resume, eval; and
(slow) SAC learning Pendulum-v1."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

TINY = [
    "env.num_envs=2",
    "env.max_episode_steps=50",
    "runner.horizon=25",
    "runner.checkpoint_every=2",
    "runner.progress=false",
    "policy.hidden_sizes=[32,32]",
    "algo.critic_hidden_sizes=[32,32]",
    "algo.batch_size=64",
    "algo.learning_starts=200",
    "algo.buffer_size=5000",
]


# CrossQ shares every line of the loop but its loss: its run is a slow test.
@pytest.mark.parametrize("algo", ["sac", pytest.param("crossq", marks=pytest.mark.slow)])
def test_train_checkpoint_buffer_resume_and_eval(ray_cluster, tmp_path: pathlib.Path, capsys, algo):
    run_dir = tmp_path / "run"
    args = ["train", "--config", "sac_pendulum", "--run-dir", str(run_dir), *TINY]
    # 6 iterations of 2 envs x 25 steps; updates start once 200 transitions are in.
    assert main([*args, f"algo.name={algo}", "runner.total_env_steps=300"]) == 0
    assert "(hybrid, ray)" in capsys.readouterr().out
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    # Chunk k is added while chunk k+1 is collected: the 4th chunk (200 transitions in)
    # is added in iteration 5, whose step makes floor(1 * (200 - 200 + 1)) = 1 update.
    assert [r["train/updates_made"] for r in rows] == [0, 0, 0, 0, 1, 50]
    assert rows[-1]["train/staleness"] == 1.0  # collected with weights 1 update old
    ckpt = run_dir / "checkpoints" / "iteration_000006" / "model" / "replay_buffer.npz"
    with np.load(ckpt) as buf:  # the final checkpoint flushed the last chunk in
        assert buf["obs"].shape == (300, 3) and buf["next_obs"].shape == (300, 3)

    assert main(["train", "--resume", str(run_dir), "runner.total_env_steps=400"]) == 0
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows][-3:] == [300, 350, 400]
    first = rows[-2]  # the buffer came back with all 300 transitions
    assert first["train/buffer_size"] == 300.0
    assert first["train/updates"] == 51.0 + 50.0  # the flushed chunk's updates, then on
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run_dir), "--episodes", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/episodes"] == 2.0 and metrics["eval/length_mean"] == 50.0


@pytest.mark.slow
def test_sac_learns_pendulum(ray_cluster, tmp_path: pathlib.Path):
    """From about -1200 (random actions) to better than -600 in 8000 steps; small
    networks keep it to a couple of minutes on two loaded cores."""
    run_dir = tmp_path / "run"
    overrides = [
        "runner.progress=false",
        "runner.total_env_steps=8000",
        "policy.hidden_sizes=[64,64]",
        "algo.critic_hidden_sizes=[64,64]",
    ]
    assert main(["train", "--config", "sac_pendulum", "--run-dir", str(run_dir), *overrides]) == 0
    returns = [r["env/return_mean"] for r in read_metrics(run_dir) if "env/return_mean" in r]
    assert np.mean(returns[:2]) < -900  # the first episodes: the untrained policy
    assert np.mean(returns[-2:]) > -600, returns
