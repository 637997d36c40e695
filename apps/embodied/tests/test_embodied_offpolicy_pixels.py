"""Off-policy training from pixels through the app's CLI on a small gymnasium image task
(``pixel_point``, 16 x 16 RGB, 2 stacked frames): uint8 frames in the checkpointed buffer,
DrQ on, eval of the pixel actor; an MLP policy on that env is refused before any worker."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
import torch
import yaml

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

HERE = pathlib.Path(__file__).parent

CONFIG = {
    "env": {
        "env_id": "pixel_point:PixelPoint-v0",
        "kind": "gym",
        "num_envs": 2,
        "seed": 0,
        "frame_stack": 2,
        "max_episode_steps": 10,
    },
    "policy": {
        "encoder": "cnn",
        "cnn_channels": [8, 8],
        "cnn_kernels": [3, 3],
        "cnn_strides": [2, 1],
        "cnn_features": 32,
        "hidden_sizes": [32],
        "activation": "relu",
    },
    "algo": {
        "name": "sac",
        "critic_hidden_sizes": [32],
        "buffer_size": 1000,
        "batch_size": 16,
        "learning_starts": 40,
        "augment": "random_shift",
        "augment_pad": 2,
    },
    "runner": {
        "name": "pixel_point",
        "total_env_steps": 80,
        "horizon": 10,
        "checkpoint_every": 4,
        "progress": False,
    },
    "placement": {"actor": "1", "rollout": "0", "env": "0"},
    "cluster": {"num_cpus": 2, "devices": 2},
}


@pytest.fixture
def config_file(tmp_path: pathlib.Path, monkeypatch) -> pathlib.Path:
    monkeypatch.syspath_prepend(str(HERE))  # the driver builds one env to check it
    path = tmp_path / "pixel_point.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def ray_init_kwargs():
    # The env workers import the task module by its gymnasium id: put this folder on
    # their path.
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {"num_cpus": 2, "runtime_env": {"env_vars": {"PYTHONPATH": path}}}


def test_mlp_policy_on_the_image_env_is_refused_before_workers(config_file, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(config_file), "--run-dir", str(run_dir)]
    assert main([*args, "policy.encoder=mlp"]) == 2
    err = capsys.readouterr().err
    assert "policy.encoder: env 'pixel_point:PixelPoint-v0'" in err
    assert "keys ['rgb'] are images and policy.encoder is 'mlp'" in err
    assert not run_dir.exists()
    assert main([*args, "algo.name=iql"]) == 2
    assert "iql learns from flat vector observations" in capsys.readouterr().err


def test_sac_from_pixels_trains_checkpoints_uint8_frames_and_evals(
    ray_cluster, config_file, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(config_file), "--run-dir", str(run_dir)]
    assert main(args) == 0
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [20, 40, 60, 80]
    # Chunk k enters the buffer during iteration k+1: 40 transitions (learning_starts)
    # are in during iteration 3, which makes floor(1 * (40 - 40 + 1)) = 1 update.
    assert [r["train/updates_made"] for r in rows] == [0, 0, 1, 20]
    ckpt = run_dir / "checkpoints" / "iteration_000004" / "model"
    with np.load(ckpt / "replay_buffer.npz") as buf:
        assert buf["obs.rgb"].dtype == np.uint8 and buf["obs.rgb"].shape == (80, 16, 16, 6)
        assert buf["next_obs.rgb"].dtype == np.uint8
        # The first frame of an episode is stacked with itself (no earlier frame).
        first = buf["obs.rgb"][0]
        np.testing.assert_array_equal(first[..., :3], first[..., 3:])
    state = torch.load(ckpt.parent / "state.pt", weights_only=False)
    conv = state["learner"]["learner"]["actor"]["encoder.cnn.0.weight"]
    assert tuple(conv.shape) == (8, 6, 3, 3)  # 2 stacked RGB frames
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run_dir), "--episodes", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/episodes"] == 2.0 and metrics["eval/length_mean"] == 10.0


# Slow (several minutes on two loaded cores): measured with this config, the return went
# from about -15 (random steering, the first 400 steps) to about -3 by 3000 steps.
@pytest.mark.slow
def test_sac_from_pixels_learns_pixel_point(ray_cluster, config_file, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [
        "env.num_envs=4",
        "env.max_episode_steps=20",
        "policy.cnn_channels=[16,16]",
        "policy.cnn_features=64",
        "policy.hidden_sizes=[64,64]",
        "algo.critic_hidden_sizes=[64,64]",
        "algo.batch_size=64",
        "algo.learning_starts=400",
        "algo.buffer_size=20000",
        "algo.actor_lr=0.001",
        "algo.critic_lr=0.001",
        "algo.alpha_lr=0.001",
        "algo.gamma=0.9",
        "algo.init_alpha=0.1",
        "runner.total_env_steps=3200",
        "runner.horizon=20",
        "runner.checkpoint_every=0",
    ]
    args = ["train", "--config", str(config_file), "--run-dir", str(run_dir), *overrides]
    assert main(args) == 0
    returns = [r["env/return_mean"] for r in read_metrics(run_dir) if "env/return_mean" in r]
    # 20 steps of -|p|: a random walk stays about 0.75 away (-15); steering to the
    # center in about 3 steps of 0.25 costs about -3.
    assert np.mean(returns[:5]) < -10
    assert np.mean(returns[-5:]) > -6
