"""Config errors are reported, naming the key, before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib

import pytest
import ray

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import ConfigError


def test_cartpole_preset_loads_with_overrides():
    cfg = load_embodied_config("cartpole", ["algo.clip_high=0.28", "runner.pipeline_stages=2"])
    assert cfg.env.env_id == "CartPole-v1"
    assert cfg.algo.clip_high == 0.28
    assert cfg.runner.pipeline_stages == 2
    assert dict(cfg.placement) == {"actor": "0", "rollout": "0", "env": "0"}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("algo.clip_hihg=0.3", "algo.clip_hihg"),
        ("runner.horizon=abc", "runner.horizon"),
        ("policy.hidden_sizes=12", "policy.hidden_sizes"),
        ("algo.name=sap", r"algo: name: unknown advantage estimator 'sap'; registered: "),
        # sac is off-policy: the PPO keys of the preset do not fit its section
        ("algo.name=sac", r"unknown key 'algo.lr' in OffPolicyConfig"),
        ("algo.algo=ppo", r"'algo.algo' was renamed to 'algo.name'"),
        ("runner.pipeline_stages=3", "env.num_envs"),
        ("placement.actor=0-3", "device 2 is out of range: the cluster has 2 device"),
        ("placement.actor=0-1", None),  # valid: a data-parallel actor
        ("placement.rollout=5", "placement"),
        ("placement.critic=0", "critic"),
        ("algo.name=grpo", None),  # valid: group_size 0 means all 8 envs
        ("runner.total_env_steps=100", "runner.total_env_steps"),
    ],
)
def test_bad_keys_and_values_are_named(override, named):
    if named is None:
        load_embodied_config("cartpole", [override])
        return
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_embodied_config("cartpole", [override])


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="cartpole"):
        load_embodied_config("no-such-preset")
    with pytest.raises(ConfigError, match="does not exist"):
        load_embodied_config("missing.yaml")


def test_cli_fails_before_starting_anything(tmp_path: pathlib.Path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", "cartpole", "--run-dir", str(run_dir), "algo.lr=fast"])
    assert code == 2
    assert "algo.lr" in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


def test_policy_in_env_needs_rollout_on_the_env_devices():
    load_embodied_config("cartpole", ["runner.policy_in_env=true", "placement.actor=1"])
    with pytest.raises(ConfigError, match=r"runner\.policy_in_env.*placement\.rollout \(1\)"):
        load_embodied_config("cartpole", ["runner.policy_in_env=true", "placement.rollout=1"])
