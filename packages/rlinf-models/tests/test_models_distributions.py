"""Log-probs and entropies against torch.distributions and hand formulas."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.distributions import (
    AffineTransform,
    Independent,
    Normal,
    TanhTransform,
    TransformedDistribution,
)

from rlinf.models import PolicyConfig, build_policy, log1m_tanh_sq

STATE = {"state": SimpleNamespace(shape=(3,), dtype=np.dtype("float32"))}


def box(low, high):
    return SimpleNamespace(
        kind="continuous", shape=(len(low),), n=None, low=np.array(low), high=np.array(high)
    )


def make(kw, spec):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(init_log_std=-0.5, **kw), STATE, spec)
    # A non-trivial mean: larger policy-head weights than the 0.01-gain init.
    torch.nn.init.normal_(policy.head.mean.weight, std=0.5)
    obs = {"state": torch.randn(64, 3)}
    dist = policy.head(policy.actor_encoder(obs))
    return policy, obs, dist.mean.detach(), dist.stddev.detach()


def test_gaussian_log_prob_and_entropy_match_torch():
    policy, obs, mu, std = make({}, box([-1, -1], [1, 1]))
    action, log_prob, _ = policy.act(obs)
    ref = Independent(Normal(mu, std), 1)
    torch.testing.assert_close(log_prob, ref.log_prob(action))
    _, ent, _ = policy.evaluate(obs, action)
    torch.testing.assert_close(ent, ref.entropy())
    # Hand formula: sum_d -((a - mu)^2 / (2 sigma^2)) - log sigma - log(2 pi) / 2.
    hand = (-((action - mu) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(log_prob, hand)


@pytest.mark.parametrize(
    ("low", "high"),
    [([-1.0, -1.0], [1.0, 1.0]), ([-2.0, 0.0], [2.0, 5.0]), ([-np.inf] * 2, [np.inf] * 2)],
)
@pytest.mark.parametrize("log_std", ["state_independent", "state_dependent"])
def test_tanh_gaussian_log_prob_matches_transformed_distribution(low, high, log_std):
    spec = box(low, high)
    policy, obs, mu, std = make({"tanh_squash": True, "log_std": log_std}, spec)
    action, log_prob, _ = policy.act(obs)
    finite = np.isfinite(spec.low) & np.isfinite(spec.high)
    lo, hi = np.where(finite, spec.low, -1.0), np.where(finite, spec.high, 1.0)
    scale = torch.tensor((hi - lo) / 2, dtype=torch.float32)
    loc = torch.tensor((hi + lo) / 2, dtype=torch.float32)
    ref = Independent(
        TransformedDistribution(Normal(mu, std), [TanhTransform(), AffineTransform(loc, scale)]), 1
    )
    torch.testing.assert_close(log_prob, ref.log_prob(action), atol=2e-4, rtol=1e-5)
    lo, hi = loc - scale, loc + scale
    assert ((action > lo) & (action < hi)).all()


def test_log1m_tanh_sq_is_stable():
    u = torch.tensor([-30.0, -3.0, 0.0, 0.7, 3.0, 30.0], dtype=torch.float64)
    torch.testing.assert_close(log1m_tanh_sq(u[1:-1]), torch.log(1 - torch.tanh(u[1:-1]) ** 2))
    assert torch.isfinite(log1m_tanh_sq(u.float())).all()


def test_tanh_log_prob_finite_on_the_bounds():
    policy, obs, *_ = make({"tanh_squash": True}, box([-1, 0], [1, 4]))
    edge = torch.tensor([[1.0, 0.0]]).expand(64, 2)
    log_prob, _, _ = policy.evaluate(obs, edge)
    assert torch.isfinite(log_prob).all()


def test_categorical_log_prob_and_entropy_by_hand():
    spec = SimpleNamespace(kind="discrete", shape=(), n=5, low=None, high=None)
    for chunk in (1, 3):
        torch.manual_seed(1)
        policy = build_policy(PolicyConfig(chunk_size=chunk, policy_gain=1.0), STATE, spec)
        obs = {"state": torch.randn(32, 3)}
        action, log_prob, _ = policy.act(obs)
        logits = policy.head.logits(policy.actor_encoder(obs)).detach().reshape(32, chunk, 5)
        logp = torch.log_softmax(logits, -1)
        idx = action.reshape(32, chunk, 1)
        torch.testing.assert_close(log_prob, logp.gather(-1, idx).squeeze(-1).sum(-1))
        _, ent, _ = policy.evaluate(obs, action)
        torch.testing.assert_close(ent, -(logp.exp() * logp).sum(-1).sum(-1))
        det = policy.act(obs, deterministic=True)[0]
        torch.testing.assert_close(det.reshape(32, chunk), logits.argmax(-1))


def test_sampling_matches_distribution_moments():
    policy, obs, mu, std = make({}, box([-1], [1]))
    one = {"state": obs["state"][:1].expand(20000, 3)}
    samples = policy.act(one)[0]
    torch.testing.assert_close(samples.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(samples.std(0), std[0], atol=0.02, rtol=0)
