"""Off-policy configs (algo.name: sac | crossq | rlpd | iql): presets, dispatch, and errors
that name the cause (the offline file's included) before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import ray

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import ConfigError
from rlinf.models.embodied import OffPolicyConfig, UpdaterConfig, save_offline_data


@pytest.mark.parametrize(
    "preset",
    [
        "sac_pendulum",
        "crossq_pendulum",
        "sac_halfcheetah",
        "rlpd_pendulum",
        "iql_pendulum",
        "rlpd_hopper",
        "sac_inverted_pendulum",
        "crossq_inverted_pendulum",
        "rlpd_inverted_pendulum",
        "iql_inverted_pendulum",
    ],
)
def test_offpolicy_presets_load(preset):
    cfg = load_embodied_config(preset)
    assert isinstance(cfg.algo, OffPolicyConfig)
    assert cfg.algo.name == preset.split("_")[0]
    assert cfg.algo.buffer_size >= cfg.algo.batch_size


def test_inverted_pendulum_presets_compare_like_with_like():
    """The MuJoCo curve presets share the env; SAC (no demos) is RLPD's baseline at equal cost."""
    cfgs = {
        name: load_embodied_config(f"{name}_inverted_pendulum")
        for name in ("sac", "crossq", "rlpd", "iql")
    }
    assert {c.env.env_id for c in cfgs.values()} == {"InvertedPendulum-v5"}
    assert {c.env.kind for c in cfgs.values()} == {"mujoco"}
    sac, rlpd = cfgs["sac"].algo, cfgs["rlpd"].algo
    for field in ("utd_ratio", "batch_size", "learning_starts", "actor_lr", "critic_lr", "gamma"):
        assert getattr(sac, field) == getattr(rlpd, field), field
    assert cfgs["sac"].runner.total_env_steps == cfgs["rlpd"].runner.total_env_steps
    assert sac.offline_data is None and rlpd.offline_ratio == 0.5
    assert cfgs["iql"].algo.offline_steps > 0


def test_algo_name_picks_the_section_class():
    cfg = load_embodied_config("sac_pendulum", ["algo.name=crossq", "algo.adam_beta1=0.5"])
    assert isinstance(cfg.algo, OffPolicyConfig) and not cfg.algo.uses_target
    assert isinstance(load_embodied_config("cartpole").algo, UpdaterConfig)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["algo.buffer_size=100"], r"buffer_size \(100\) is smaller than batch_size \(256\)"),
        (
            ["algo.name=foo"],
            r"unknown advantage estimator 'foo'.*off-policy algorithms: crossq, iql, rlpd, sac",
        ),
        (["algo.name=rlpd", "algo.offline_steps=10"], r"offline_steps is IQL's offline phase"),
        (["algo.lr=0.1"], r"unknown key 'algo.lr' in OffPolicyConfig"),
        (["runner.pipeline_stages=2"], r"runner.pipeline_stages"),
        (["algo.learning_starts=20000"], r"the run would end before its first update"),
        (["env.chunk_size=2", "policy.chunk_size=2"], r"env.chunk_size"),
    ],
)
def test_offpolicy_config_errors(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_embodied_config("sac_pendulum", overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo.buffer_size=64"], "buffer_size (64) is smaller than batch_size (256)"),
        (["env.env_id=CartPole-v1"], "CartPole-v1 has discrete actions"),
        (
            ["policy.encoder=cnn"],
            "policy.encoder: env 'Pendulum-v1': policy.encoder=cnn needs at least one "
            "[H, W, C] uint8 image key",
        ),
    ],
)
def test_cli_rejects_before_workers_start(tmp_path: pathlib.Path, capsys, overrides, message):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", "sac_pendulum", "--run-dir", str(run_dir), *overrides])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


def _demo(path: pathlib.Path, env_id: str = "Pendulum-v1", n: int = 300, d: int = 3) -> str:
    rng = np.random.default_rng(0)
    arrays = {
        "obs": rng.normal(size=(n, d)),
        "actions": rng.uniform(-2, 2, size=(n, 1)),
        "rewards": rng.normal(size=n),
        "next_obs": rng.normal(size=(n, d)),
        "terminated": np.zeros(n, bool),
        "truncated": np.zeros(n, bool),
    }
    return str(save_offline_data(path, arrays, {"env_id": env_id}))


@pytest.mark.parametrize(
    ("preset", "make", "message"),
    [
        ("rlpd_pendulum", None, "algo.offline_data: rlpd trains from an offline data file"),
        ("iql_pendulum", "missing", "does not exist (make one with 'rlinf-embodied collect"),
        ("rlpd_pendulum", "hopper", "collected on env 'Hopper-v5', but this run's env.env_id"),
        ("iql_pendulum", "wide", "has obs_dim=11, but this run's env (Pendulum-v1) has obs_dim=3"),
        ("rlpd_pendulum", "short", "holds 100 transitions, fewer than the 128 one batch draws"),
    ],
)
def test_offline_file_rejected_before_workers_start(
    tmp_path: pathlib.Path, capsys, preset, make, message
):
    files = {
        "missing": lambda: str(tmp_path / "missing.npz"),
        "hopper": lambda: _demo(tmp_path / "h.npz", env_id="Hopper-v5"),
        "wide": lambda: _demo(tmp_path / "w.npz", d=11),
        "short": lambda: _demo(tmp_path / "s.npz", n=100),
    }
    overrides = [] if make is None else [f"algo.offline_data={files[make]()}"]
    run_dir = tmp_path / "run"
    code = main(["train", "--config", preset, "--run-dir", str(run_dir), *overrides])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (
            None,
            "algo.reward_normalize: offline_returns needs the episode returns in the metadata",
        ),
        ([1000.0, 1000.0], "every episode of the offline file"),
    ],
)
def test_reward_normalize_rejected_before_workers_start(
    tmp_path: pathlib.Path, capsys, returns, message
):
    path = _demo(tmp_path / "d.npz")
    if returns is not None:  # the same arrays, metadata with equal episode returns
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files if k != "metadata"}
        save_offline_data(path, arrays, {"env_id": "Pendulum-v1", "episode_returns": returns})
    run_dir = tmp_path / "run"
    overrides = [f"algo.offline_data={path}", "algo.reward_normalize=offline_returns"]
    code = main(["train", "--config", "iql_pendulum", "--run-dir", str(run_dir), *overrides])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


def test_reward_scale_error_names_the_key():
    with pytest.raises(ConfigError, match=r"reward_scale must be finite and > 0, got -1.0"):
        load_embodied_config("sac_pendulum", ["algo.reward_scale=-1"])
