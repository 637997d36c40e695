"""Policies built from rlinf.envs specs act straight into the envs (chunks included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlinf.models import PolicyConfig, build_policy

envs = pytest.importorskip("rlinf.envs", reason="needs rlinf-envs")


@pytest.mark.parametrize(
    ("env_id", "chunk", "kw"),
    [
        ("CartPole-v1", 1, {}),
        ("CartPole-v1", 3, {"shared_trunk": True}),
        ("Pendulum-v1", 2, {"tanh_squash": True, "normalize_obs": True}),
    ],
)
def test_policy_drives_env(env_id, chunk, kw):
    torch.manual_seed(0)
    cfg = envs.EnvConfig(env_id, num_envs=3, chunk_size=chunk, max_episode_steps=10)
    with envs.GymVectorEnv(cfg) as env:
        policy = build_policy(
            PolicyConfig(chunk_size=chunk, **kw), env.observation_spec, env.action_spec
        )
        obs = env.reset()
        for _ in range(12):
            policy.update_obs_normalizer(obs)
            action, log_prob, value = policy.act(obs)
            res = env.step(action.numpy())
            bootstrap = policy.value(res.info.final_obs)
            assert bootstrap.shape == value.shape == log_prob.shape == (3,)
            if kw.get("tanh_squash"):
                low, high = env.action_spec.low, env.action_spec.high
                assert ((action.numpy() >= low) & (action.numpy() <= high)).all()
            obs = res.obs
        assert np.isfinite(res.reward).all()
