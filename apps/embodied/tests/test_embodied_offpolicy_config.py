"""Off-policy configs (algo.name: sac | crossq): presets, dispatch, and errors that name the
cause before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib

import pytest
import ray

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import ConfigError
from rlinf.models.embodied import OffPolicyConfig, UpdaterConfig


@pytest.mark.parametrize("preset", ["sac_pendulum", "crossq_pendulum", "sac_halfcheetah"])
def test_offpolicy_presets_load(preset):
    cfg = load_embodied_config(preset)
    assert isinstance(cfg.algo, OffPolicyConfig)
    assert cfg.algo.name == preset.split("_")[0]
    assert cfg.algo.buffer_size >= cfg.algo.batch_size


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
            r"unknown advantage estimator 'foo'.*off-policy algorithms: crossq, sac",
        ),
        (["algo.name=rlpd"], r"'rlpd' has losses in rlinf.algos but no training loop"),
        (["algo.lr=0.1"], r"unknown key 'algo.lr' in OffPolicyConfig"),
        (["policy.encoder=cnn"], r"policy.encoder: the off-policy learner's actor and critics"),
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
    ],
)
def test_cli_rejects_before_workers_start(tmp_path: pathlib.Path, capsys, overrides, message):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", "sac_pendulum", "--run-dir", str(run_dir), *overrides])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()
