"""Every bundled preset loads and validates; the ManiSkill preset trains end to end (tiny)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import gymnasium as gym
import pytest
import torch
import yaml

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import find_preset, read_metrics
from rlinf.envs import ENVS

PRESETS = sorted(
    p.stem for p in find_preset("cartpole", "rlinf.apps.embodied").parent.glob("*.yaml")
)
HAS_MANISKILL = importlib.util.find_spec("mani_skill") is not None
# The simulator module each env kind needs: a preset of a kind whose extra is missing fails
# validation by design (the env id is checked against the simulator's registry).
_KIND_MODULES = {"mujoco": "mujoco", "maniskill": "mani_skill", "metaworld": "metaworld"}


def _skip_without_simulator(name: str) -> None:
    """Skip when preset ``name``'s env kind needs a simulator extra that is not installed."""
    kind = yaml.safe_load(find_preset(name, "rlinf.apps.embodied").read_text())["env"].get("kind")
    module = _KIND_MODULES.get(kind or "gym")
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"preset {name!r} needs rlinf-envs[{kind}]")


# ManiSkill 3.0.1 calls np.isnan on torch tensors (numpy 2 deprecation): its issue, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")


def test_the_new_presets_are_bundled():
    assert {"cartpole", "hopper", "halfcheetah", "pushcube", "pickcube"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_validates(name):
    _skip_without_simulator(name)
    cfg = load_embodied_config(name)
    assert cfg.runner.name == name
    assert cfg.env.kind in ENVS
    # Whole updates only: a remainder would be dropped and the linear lr would not reach 0.
    per_update = cfg.env.num_envs * cfg.runner.horizon * cfg.env.chunk_size
    assert cfg.runner.total_env_steps % per_update == 0
    if cfg.env.kind == "maniskill":
        from rlinf.envs._maniskill_setup import make_kwargs

        # The adapter accepts the preset's env_kwargs (task exists, modes and backend valid).
        kwargs = make_kwargs(cfg.env)
        assert kwargs["obs_mode"] == ("rgb" if "_rgb" in name else "state")
        assert "ignore_terminations" not in kwargs  # the adapter's own option
        # Frame stacking runs on the CPU simulator only; the others pick the GPU one there.
        gpu = torch.cuda.is_available() and cfg.env.frame_stack == 1
        assert kwargs["sim_backend"] == ("physx_cuda" if gpu else "physx_cpu")
    elif cfg.env.kind == "metaworld":
        from rlinf.envs._metaworld import metaworld_tasks

        # Every env worker's stage holds whole task sets (one env per task per set).
        stage_envs = cfg.env.num_envs // cfg.runner.pipeline_stages
        assert stage_envs % len(metaworld_tasks(cfg.env.env_id)) == 0
    else:
        assert gym.spec(cfg.env.env_id).id == cfg.env.env_id


@pytest.mark.parametrize(
    ("name", "env_id", "gamma"),
    [("halfcheetah", "HalfCheetah-v5", 0.99), ("pushcube", "PushCube-v1", 0.8)],
)
def test_preset_contents(name, env_id, gamma):
    _skip_without_simulator(name)
    cfg = load_embodied_config(name, ["algo.lr=0.001"])
    assert (cfg.env.env_id, cfg.algo.gamma, cfg.algo.lr) == (env_id, gamma, 0.001)


def test_maniskill_options_are_dotted_overrides():
    _skip_without_simulator("pushcube")
    # The GPU layout suggested in the preset: one env worker with many envs.
    overrides = [
        "env.env_kwargs.control_mode=pd_ee_delta_pos",
        "env.num_envs=512",
        "placement.env=0",
    ]
    cfg = load_embodied_config("pushcube", overrides)
    assert dict(cfg.env.env_kwargs) == {
        "obs_mode": "state",
        "control_mode": "pd_ee_delta_pos",
        "reward_mode": "normalized_dense",
        "sim_backend": "auto",
        "ignore_terminations": True,
    }
    assert cfg.env.num_envs == 512


def _maniskill_unavailable() -> str | None:
    """Why the ManiSkill simulator cannot run here (probed in a subprocess, since a broken
    Vulkan driver may abort the process), or None."""
    if not HAS_MANISKILL:
        return "needs rlinf-envs[maniskill]"
    code = (
        "from rlinf.envs import EnvConfig, make_env\n"
        "make_env(EnvConfig('PushCube-v1', kind='maniskill')).close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return f"ManiSkill cannot build PushCube-v1 here (no Vulkan device?): {tail[0]}"


@pytest.fixture(scope="module")
def ray_init_kwargs():
    # Skips before Ray starts where the simulator cannot run.
    reason = _maniskill_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return {"num_cpus": 2}


@pytest.mark.slow
def test_pushcube_preset_trains_two_updates(ray_cluster, tmp_path, capsys):
    # The preset's own placement (two env workers, two pipeline stages), shrunk: 4 envs x
    # 8 steps per update, 5-step episodes so that some end inside the run.
    run_dir = tmp_path / "pushcube"
    tiny = {
        "env.num_envs": 4,
        "env.max_episode_steps": 5,
        "runner.horizon": 8,
        "runner.total_env_steps": 64,
        "runner.checkpoint_every": 1,
        "runner.progress": "false",
        "policy.hidden_sizes": "[32, 32]",
    }
    overrides = [f"{key}={value}" for key, value in tiny.items()]
    assert main(["train", "--config", "pushcube", "--run-dir", str(run_dir), *overrides]) == 0
    assert "64 env steps, 2 updates" in capsys.readouterr().out
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [int(r["step"]) for r in rows] == [32, 64]
    assert rows[-1]["train/weight_version"] == 2.0
    for row in rows:
        # 4 envs x 8 steps with 5-step episodes: each env ends one episode per update.
        assert row["env/episodes"] >= 4
        assert 1 <= row["env/length_mean"] <= 5
        assert 0.0 <= row["env/success_rate"] <= 1.0
        # normalized_dense rewards lie in [0, 1] per step
        assert 0.0 <= row["env/return_mean"] <= 5.0
    state = torch.load(run_dir / "checkpoints/update_000002/state.pt", weights_only=False)
    assert state["env_steps"] == 64 and state["actor"]["version"] == 2
