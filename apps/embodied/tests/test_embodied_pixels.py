"""Pixels in the embodied app: an image env needs the CNN policy (refused before any worker
starts otherwise), and the pixel preset trains an iteration end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import ConfigError, read_metrics

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning"),
    pytest.mark.skipif(
        importlib.util.find_spec("mani_skill") is None, reason="needs rlinf-envs[maniskill]"
    ),
]


def test_image_env_with_mlp_policy_is_refused():
    cfg = load_embodied_config("pushcube_rgb")
    assert (cfg.policy.encoder, cfg.env.frame_stack) == ("cnn", 2)
    with pytest.raises(ConfigError, match=r"policy.encoder: env 'PushCube-v1' observes images"):
        load_embodied_config("pushcube_rgb", ["policy.encoder=mlp"])
    # Leaving the images out is the other way to run an MLP on that env.
    load_embodied_config("pushcube_rgb", ["policy.encoder=mlp", "policy.obs_keys=[state]"])


@pytest.fixture(scope="module")
def ray_init_kwargs():
    # Skips before Ray starts where the simulator cannot run.
    # A broken Vulkan driver may abort the process: probe in a subprocess.
    code = (
        "from rlinf.envs import EnvConfig, make_env\n"
        "make_env(EnvConfig('PushCube-v1', kind='maniskill')).close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"ManiSkill cannot build PushCube-v1 here: {proc.stderr[-300:]}")
    return {"num_cpus": 2}


# Slow: ManiSkill rendering on the CPU (lavapipe) plus a Ray flow; the image-refusal check
# above stays in the quick suite.
@pytest.mark.slow
def test_pixel_preset_trains_an_iteration(ray_cluster, tmp_path, capsys):
    # The preset shrunk: one env worker of 2 envs, 4-step rollouts, 3-step episodes.
    run_dir = tmp_path / "rgb"
    tiny = {
        "env.num_envs": 2,
        "env.max_episode_steps": 3,
        "runner.horizon": 4,
        "runner.total_env_steps": 8,
        "runner.checkpoint_every": 1,
        "runner.progress": "false",
        "placement.env": "0",
        "policy.hidden_sizes": "[32, 32]",
    }
    overrides = [f"{key}={value}" for key, value in tiny.items()]
    assert main(["train", "--config", "pushcube_rgb", "--run-dir", str(run_dir), *overrides]) == 0
    assert "8 env steps, 1 updates" in capsys.readouterr().out
    (row,) = read_metrics(run_dir / "metrics.jsonl")
    assert row["env/episodes"] == 2 and row["env/length_mean"] == 3
    assert 0.0 <= row["env/return_mean"] <= 3.0  # normalized_dense: [0, 1] per step
    state = torch.load(run_dir / "checkpoints/update_000001/state.pt", weights_only=False)
    # The CNN saw 2 stacked RGB frames: 6 input channels, the preset's 16 filters of 8 x 8.
    conv = state["actor"]["policy"]["actor_encoder.cnn.0.weight"]
    assert tuple(conv.shape) == (16, 6, 8, 8)
