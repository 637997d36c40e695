"""OffPolicyLearner (SAC / CrossQ): config errors, update accounting, Polyak targets,
temperature steps, checkpoint and buffer round trips."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlinf.core import Trajectory
from rlinf.models import PolicyConfig
from rlinf.models.embodied import OffPolicyConfig, OffPolicyLearner

BOX = SimpleNamespace(
    kind="continuous", shape=(1,), n=None, low=np.array([-2.0]), high=np.array([2.0])
)
SPEC = {"s": SimpleNamespace(shape=(3,), dtype=np.dtype("float32"))}
POLICY = PolicyConfig(hidden_sizes=(16,), activation="relu")


def config(**kw):
    base = dict(critic_hidden_sizes=(16,), buffer_size=1000, batch_size=8, learning_starts=8)
    return OffPolicyConfig(**{**base, **kw})


def traj(n=2, t=10, seed=0):
    rng = np.random.default_rng(seed)
    return Trajectory(
        obs={"s": rng.normal(size=(n, t, 3)).astype(np.float32)},
        actions=rng.uniform(-2, 2, size=(n, t, 1)).astype(np.float32),
        rewards=rng.normal(size=(n, t)).astype(np.float32),
        terminated=rng.random((n, t)) < 0.1,
        truncated=np.zeros((n, t), bool),
        records={"next_obs": rng.normal(size=(n, t, 3)).astype(np.float32)},
    )


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        (
            {"buffer_size": 100, "batch_size": 256, "learning_starts": 256},
            "smaller than batch_size",
        ),
        ({"name": "td3"}, "unknown off-policy algorithm 'td3'"),
        ({"learning_starts": 4}, "learning_starts .4. must be >= batch_size"),
        ({"learning_starts": 2000}, "exceeds buffer_size"),
        ({"utd_ratio": 0.0}, "utd_ratio must be > 0"),
    ],
)
def test_config_errors(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        config(**kw)


def test_updates_due_follows_learning_starts_and_utd():
    learner = OffPolicyLearner(config(learning_starts=30, utd_ratio=0.5), POLICY, SPEC, BOX)
    learner.add(traj())  # 20 transitions < 30
    assert learner.updates_due() == 0
    learner.add(traj(seed=1))  # 40: floor(0.5 * (40 - 30 + 1)) = 5
    assert learner.updates_due() == 5
    learner.update(5)
    assert learner.updates == 5 and learner.updates_due() == 0


def test_sac_step_polyak_target_and_temperature():
    cfg = config(tau=0.25, alpha_lr=0.01, init_alpha=0.5)
    learner = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=3)
    learner.add(traj())
    target0 = copy.deepcopy(learner.target.state_dict())
    log_alpha0 = float(learner.log_alpha.detach())
    # The temperature's gradient is -(mean log pi + target_entropy) on the batch the
    # step draws; Adam's first step moves log_alpha by lr against its sign.
    probe = copy.deepcopy(learner)
    b = probe.buffer.sample(cfg.batch_size, probe.generator)
    probe._critic_step(b, *probe._features(b))
    torch.manual_seed(123)
    _, logp = probe.actor(b["obs"])
    grad = -(float(logp.mean()) - 1.0)  # target_entropy = -action_dim = -1
    torch.manual_seed(123)
    metrics = learner.update(1)
    assert learner.updates == 1
    for name, value in learner.target.state_dict().items():
        want = 0.75 * target0[name] + 0.25 * learner.critic.state_dict()[name]
        torch.testing.assert_close(value, want)
    assert float(learner.log_alpha.detach()) == pytest.approx(
        log_alpha0 - 0.01 * math.copysign(1, grad), abs=1e-6
    )
    assert metrics["train/alpha"] == pytest.approx(math.exp(float(learner.log_alpha.detach())))
    assert {"train/critic_loss", "train/actor_loss", "train/entropy"} <= set(metrics)


def test_update_refuses_buffer_smaller_than_batch():
    learner = OffPolicyLearner(config(batch_size=32, learning_starts=32), POLICY, SPEC, BOX)
    learner.add(traj())
    with pytest.raises(ValueError, match="20 transitions, fewer than batch_size 32"):
        learner.update(1)


def test_crossq_has_no_target_and_trains_batchrenorm_critic():
    learner = OffPolicyLearner(config(name="crossq", adam_beta1=0.5), POLICY, SPEC, BOX)
    assert learner.target is None
    learner.add(traj())
    before = [p.detach().clone() for p in learner.critic.parameters()]
    metrics = learner.update(3)
    assert np.isfinite(metrics["train/critic_loss"])
    assert any(
        not torch.equal(a, b) for a, b in zip(before, learner.critic.parameters(), strict=True)
    )
    assert learner.critic.training


def test_state_and_buffer_round_trip_reproduce_updates(tmp_path):
    cfg = config()
    a = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=1)
    a.add(traj())
    a.update(4)
    a.save_buffer(str(tmp_path / "buf.npz"))
    state = copy.deepcopy(a.state_dict())
    b = OffPolicyLearner(cfg, POLICY, SPEC, BOX, seed=99)
    b.load_state_dict(state)
    assert b.load_buffer(str(tmp_path / "buf.npz")) == 20
    for k, v in a.buffer.ordered().items():
        torch.testing.assert_close(b.buffer.ordered()[k], v)
    torch.set_rng_state(state["torch_rng"])
    ma = a.update(3)
    torch.set_rng_state(state["torch_rng"])
    mb = b.update(3)
    assert ma == pytest.approx(mb)
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
