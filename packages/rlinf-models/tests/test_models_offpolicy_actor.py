"""Off-policy actor, responder and transitions: log-densities, next_obs assembly, layout."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from rlinf.core import Trajectory
from rlinf.models import PolicyConfig
from rlinf.models.embodied import (
    OffPolicyResponder,
    SquashedGaussianActor,
    WeightSnapshot,
    build_actor,
    flat_obs,
    transitions,
    vector_obs_dim,
)


def arr(shape, dtype="float32"):
    return SimpleNamespace(shape=shape, dtype=np.dtype(dtype))


BOX = SimpleNamespace(
    kind="continuous", shape=(2,), n=None, low=np.array([-1.0, 0.0]), high=np.array([1.0, 4.0])
)
SPEC = {"b": arr((2,)), "a": arr((1,))}


def test_squash_log_prob_matches_torch_transformed_normal():
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, BOX, (8,))
    mean, log_std, u = torch.randn(5, 2), torch.randn(5, 2) * 0.3, torch.randn(5, 2)
    ref = TransformedDistribution(
        Normal(mean, log_std.exp()),
        [TanhTransform(), AffineTransform(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0]))],
    )
    action = torch.tensor([0.0, 2.0]) + torch.tensor([1.0, 2.0]) * torch.tanh(u)
    expected = ref.log_prob(action).sum(-1)
    torch.testing.assert_close(
        actor.squash_log_prob(u, mean, log_std), expected, atol=1e-4, rtol=1e-4
    )


def test_squash_log_prob_hand_value_at_zero():
    # u = mean = 0, std = 1: each dim is log N(0; 0, 1) - log(1 - 0) - log(scale_d);
    # scales are 1 and 2.
    actor = SquashedGaussianActor(3, BOX, (8,))
    z = torch.zeros(1, 2)
    expected = 2 * (-0.5 * math.log(2 * math.pi)) - math.log(2.0)
    assert actor.squash_log_prob(z, z, z).item() == pytest.approx(expected, abs=1e-6)


def test_actions_in_bounds_and_deterministic_is_squashed_mean():
    torch.manual_seed(1)
    actor = SquashedGaussianActor(3, BOX, (8,))
    obs = torch.randn(64, 3) * 5
    a = actor.act(obs)
    assert a.shape == (64, 2)
    assert (a[:, 0].abs() <= 1).all() and ((a[:, 1] >= 0) & (a[:, 1] <= 4)).all()
    mean, _ = actor._dist(obs)
    want = torch.tensor([0.0, 2.0]) + torch.tensor([1.0, 2.0]) * torch.tanh(mean)
    torch.testing.assert_close(actor.act(obs, deterministic=True), want)
    action, logp = actor(obs)
    assert logp.shape == (64,) and action.requires_grad


def test_spec_errors():
    with pytest.raises(ValueError, match=r"\['rgb'\] are images"):
        vector_obs_dim({"rgb": arr((32, 32, 3), "uint8"), "s": arr((3,))})
    assert vector_obs_dim({"s": arr((3,)), "t": arr((2, 2))}) == 7
    discrete = SimpleNamespace(kind="discrete", shape=(), n=3, low=None, high=None)
    with pytest.raises(ValueError, match="continuous actions"):
        SquashedGaussianActor(3, discrete, (8,))
    unbounded = SimpleNamespace(
        kind="continuous", shape=(1,), n=None, low=np.array([-np.inf]), high=np.array([1.0])
    )
    with pytest.raises(ValueError, match="finite action bounds"):
        SquashedGaussianActor(3, unbounded, (8,))


def test_flat_obs_sorts_keys_and_flattens():
    obs = {"b": np.array([[1.0, 2.0], [3.0, 4.0]]), "a": np.array([[9.0], [8.0]])}
    torch.testing.assert_close(flat_obs(obs), torch.tensor([[9.0, 1, 2], [8.0, 3, 4]]))


def test_responder_assembles_next_obs_from_final_rows():
    actor = build_actor(PolicyConfig(hidden_sizes=(8,)), SPEC, BOX)
    responder = OffPolicyResponder(actor)
    responder.load_weights(WeightSnapshot.of(actor, 3))
    responder.require(3)
    obs = {"a": np.array([[0.0], [1.0], [2.0]]), "b": np.zeros((3, 2))}
    final_rows = {"a": np.array([[7.0]]), "b": np.array([[5.0, 6.0]])}
    first, mid, last = responder.answer(
        [
            {"obs": obs, "final": None},
            {"obs": obs, "final": (np.array([1]), final_rows)},
            {
                "obs": None,
                "final": (np.arange(3), {k: np.repeat(v, 3, 0) for k, v in final_rows.items()}),
            },
        ]
    )
    assert first["action"].shape == (3, 2) and "record_prev" not in first
    np.testing.assert_array_equal(
        mid["record_prev"]["next_obs"], [[0.0, 0, 0], [7.0, 5, 6], [2.0, 0, 0]]
    )
    assert "action" not in last
    np.testing.assert_array_equal(last["record_prev"]["next_obs"], [[7.0, 5, 6]] * 3)


def test_transitions_flatten_env_major_and_keep_truncated_bootstrap():
    n, t = 2, 3
    traj = Trajectory(
        obs={"s": np.arange(n * t, dtype=np.float32).reshape(n, t, 1)},
        actions=np.ones((n, t, 1), np.float32),
        rewards=np.array([[1.0, 2, 3], [4, 5, 6]], np.float32),
        terminated=np.array([[0, 0, 1], [0, 0, 0]], bool),
        truncated=np.array([[0, 0, 0], [0, 1, 0]], bool),
        records={"next_obs": np.arange(1, n * t + 1, dtype=np.float32).reshape(n, t, 1)},
    )
    b = transitions(traj)
    torch.testing.assert_close(b["rewards"], torch.tensor([1.0, 2, 3, 4, 5, 6]))
    torch.testing.assert_close(b["terminated"], torch.tensor([0.0, 0, 1, 0, 0, 0]))
    torch.testing.assert_close(b["obs"][:, 0], torch.arange(6.0))
    torch.testing.assert_close(b["next_obs"][:, 0], torch.arange(1.0, 7.0))
    no_next = Trajectory(
        obs=traj.obs,
        actions=traj.actions,
        rewards=traj.rewards,
        terminated=traj.terminated,
        truncated=traj.truncated,
    )
    with pytest.raises(ValueError, match="no 'next_obs' record"):
        transitions(no_next)
