"""The off-policy learner's reward transform (``reward_scale``, ``reward_bias``,
``reward_normalize``): hand-computed scales, the rewards of sampled batches and IQL's
critic target, the AWR weights it changes, and the errors that name the key."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlinf.algos import iql_policy_loss
from rlinf.core import Trajectory
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    OffPolicyConfig,
    OffPolicyLearner,
    reward_transform,
    save_offline_data,
)

BOX = SimpleNamespace(
    kind="continuous", shape=(1,), n=None, low=np.array([-2.0]), high=np.array([2.0])
)
SPEC = {"s": SimpleNamespace(shape=(3,), dtype=np.dtype("float32"))}
POLICY = PolicyConfig(hidden_sizes=(16,), activation="relu")


def demo(tmp_path, n=64, returns=(63.0, 179.0, 100.0), obs=None, next_obs=None, name="d.npz"):
    """``n`` transitions whose reward equals ``obs[:, 0]`` (so a batch's scaled rewards can
    be checked against its own observations)."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 3)).astype(np.float32) if obs is None else obs
    arrays = {
        "obs": obs,
        "actions": rng.uniform(-2, 2, size=(n, 1)),
        "rewards": obs[:, 0],
        "next_obs": rng.normal(size=(n, 3)) if next_obs is None else next_obs,
        "terminated": np.zeros(n, bool),
        "truncated": np.zeros(n, bool),
    }
    meta = {"env_id": "t", "episode_returns": list(returns)}
    return str(save_offline_data(tmp_path / name, arrays, meta))


def config(**kw):
    base = dict(critic_hidden_sizes=(16,), buffer_size=1000, batch_size=8, learning_starts=8)
    return OffPolicyConfig(**{**base, **kw})


def test_reward_transform_hand_computed(tmp_path):
    path = demo(tmp_path)
    assert reward_transform(config()) == (1.0, 0.0)
    assert reward_transform(config(reward_scale=2.5, reward_bias=-1.0)) == (2.5, -1.0)
    # returns span 179 - 63 = 116: the paper's 1000 / span, times reward_scale 2
    scale, bias = reward_transform(
        config(offline_data=path, reward_normalize="offline_returns", reward_scale=2.0),
        {"episode_returns": [63.0, 179.0, 100.0]},
    )
    assert math.isclose(scale, 2.0 * 1000.0 / 116.0) and bias == 0.0


def test_batches_scaled_buffers_raw(tmp_path):
    """Every sampled batch (offline and online halves alike) carries ``2 r - 0.5``; the
    buffers keep the file's and the env's rewards."""
    path = demo(tmp_path)
    cfg = config(name="sac", offline_data=path, reward_scale=2.0, reward_bias=-0.5)
    learner = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=0)
    obs = np.random.default_rng(1).normal(size=(2, 9, 3)).astype(np.float32)
    learner.add(
        Trajectory(  # 2 envs x 8 steps, reward = obs[..., 0] as in the file
            obs={"s": obs[:, :8]},
            actions=np.zeros((2, 8, 1), np.float32),
            rewards=obs[:, :8, 0],
            terminated=np.zeros((2, 8), bool),
            truncated=np.zeros((2, 8), bool),
            records={"next_obs": obs[:, 1:]},
        )
    )
    assert cfg.offline_batch == 4  # each batch: 4 offline, 4 online
    for _ in range(3):
        batch = learner._sample()
        torch.testing.assert_close(batch["rewards"], 2.0 * batch["obs"][:, 0] - 0.5)
    for buffer in (learner.offline, learner.buffer):
        raw = buffer.sample(8, torch.Generator().manual_seed(1))
        torch.testing.assert_close(raw["rewards"], raw["obs"][:, 0])


def test_iql_critic_target_uses_scaled_rewards(tmp_path):
    """Identical transitions (obs 1, next_obs 0.5, reward 1, not terminal): IQL's Q target
    after one offline step is ``10 * 1 + 0.5 + 0.99 V(next_obs)`` with the value network as
    the step left it (the Q and actor updates do not move it)."""
    n = 16
    path = demo(
        tmp_path,
        n=n,
        obs=np.ones((n, 3), np.float32),
        next_obs=np.full((n, 3), 0.5, np.float32),
    )
    cfg = config(name="iql", offline_data=path, offline_steps=1, reward_scale=10.0, reward_bias=0.5)
    learner = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=0)
    metrics = learner.pretrain(1)
    with torch.no_grad():
        v_next = float(learner.value(torch.full((1, 3), 0.5)))
    assert metrics["train/target_mean"] == pytest.approx(10.5 + 0.99 * v_next, rel=1e-5)


def test_awr_weights_grow_with_the_scale():
    """``Q - V`` = (0.2, -0.1, 0.5) at beta 3: weights e^0.6, e^-0.3, e^1.5 (mean 2.348);
    the same advantages 10x larger (reward_scale 10 once Q, V fit): e^6 and e^15 clip at
    100, e^-3 = 0.0498 (mean 66.68, 2 of 3 clipped)."""
    logp = torch.zeros(3, requires_grad=True)
    adv = torch.tensor([0.2, -0.1, 0.5])
    _, m = iql_policy_loss(logp, adv, torch.zeros(3), beta=3.0, max_weight=100.0)
    assert float(m["weight_mean"]) == pytest.approx(
        (math.exp(0.6) + math.exp(-0.3) + math.exp(1.5)) / 3, rel=1e-5
    )
    assert float(m["weight_mean"]) == pytest.approx(2.3482, abs=1e-4)
    _, m = iql_policy_loss(logp, 10 * adv, torch.zeros(3), beta=3.0, max_weight=100.0)
    assert float(m["weight_mean"]) == pytest.approx((200 + math.exp(-3.0)) / 3, rel=1e-5)
    assert float(m["weight_clip_frac"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        (dict(reward_scale=0.0), r"reward_scale must be finite and > 0, got 0.0"),
        (dict(reward_scale=float("inf")), r"reward_scale must be finite and > 0"),
        (dict(reward_bias=float("nan")), r"reward_bias must be finite"),
        (dict(reward_normalize="minmax"), r"reward_normalize: unknown normalization 'minmax'"),
        (
            dict(reward_normalize="offline_returns"),
            r"reward_normalize: offline_returns reads the offline file's episode returns",
        ),
    ],
)
def test_config_errors_name_the_key(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        config(**kw)


def test_normalize_needs_returns_that_differ(tmp_path):
    flat = demo(tmp_path, returns=(1000.0, 1000.0), name="flat.npz")
    cfg = config(name="iql", offline_data=flat, reward_normalize="offline_returns")
    with pytest.raises(ValueError, match=r"every episode of .* returned 1000; set algo.reward"):
        OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=0)
    with pytest.raises(ValueError, match=r"reward_normalize: offline_returns needs the episode"):
        reward_transform(cfg, {"env_id": "t"})
